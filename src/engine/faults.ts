/**
 * Fault injection for the simulator and the workflow engine, so tests can make any step fail.
 * A fault matches a point: `step:<flow kind>/<step name>` (checked before a step's forward
 * action), `rollback:<flow kind>/<step name>` (before its rollback) or `command:<agent command>`
 * (checked by the simulator before answering), optionally only for one host address.
 * Kept in memory: faults are test control, not cloud state, and vanish on restart.
 */
import { CloudError } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';

export interface FaultSpec {
  point: string;
  /** only for this host (management IP); any host when absent */
  host?: string;
  /** delay before answering (or before failing) */
  delayMs?: number;
  /** fail with this error; when absent the fault only delays */
  error?: { code?: string; message?: string };
  /** fire this many times then disappear; unlimited when absent */
  times?: number;
}

export interface Fault extends FaultSpec {
  uuid: string;
  hits: number;
}

export class FaultRegistry {
  private faults: Fault[] = [];

  add(spec: FaultSpec): Fault {
    const fault: Fault = { ...spec, uuid: newId(), hits: 0 };
    this.faults.push(fault);
    return fault;
  }

  list(): Fault[] {
    return [...this.faults];
  }

  remove(uuid: string): boolean {
    const before = this.faults.length;
    this.faults = this.faults.filter((f) => f.uuid !== uuid);
    return this.faults.length !== before;
  }

  clear(): void {
    this.faults = [];
  }

  /** Applies the first matching fault: waits its delay, then throws its error if it has one. */
  async check(point: string, host?: string): Promise<void> {
    const fault = this.faults.find((f) => f.point === point && (f.host === undefined || f.host === host));
    if (!fault) return;
    fault.hits++;
    if (fault.times !== undefined && fault.hits >= fault.times) this.remove(fault.uuid);
    if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.error) {
      throw new CloudError(
        'Internal',
        fault.error.code ?? 'INJECTED_FAULT',
        fault.error.message ?? `injected fault at ${point}${host ? ` on ${host}` : ''}`,
        { details: { point, ...(host ? { host } : {}) } },
      );
    }
  }
}
