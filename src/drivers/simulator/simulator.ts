/**
 * Simulated hosts: machines that live in the management node's process and answer the same
 * host commands a real agent will. Their "physical" facts (capacity) are kept in the
 * `simulator_hosts` table, apart from the platform's own records, so they survive a restart
 * just as a real machine would. Latency and failures come from the FaultRegistry
 * (points `command:<name>`, optionally per host address) plus a base latency.
 */
import type { AgentCommand, AgentRequest, AgentResponse, HostCapacity } from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';
import type { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import type { HostAddress, HostDriver } from '../port.js';
import { hostHandlers } from './host-commands.js';
import type { Machine, SimHandler, SimHandlers } from './machine.js';
import { storageHandlers } from './storage-commands.js';
import { vmHandlers } from './vm-commands.js';

export const DEFAULT_SIMULATED_CAPACITY: HostCapacity = { cpu: 32, memory: 128 * 1024 ** 3 };

export interface SimulatorOptions {
  db: Db;
  faults: FaultRegistry;
  /** base latency of every command, in milliseconds */
  latencyMs?: number;
}

const HANDLERS: SimHandlers = { ...hostHandlers, ...vmHandlers, ...storageHandlers };

export class Simulator implements HostDriver {
  private readonly bootedAt = new Map<string, number>();

  constructor(private readonly o: SimulatorOptions) {}

  /**
   * Makes sure a simulated machine exists at `address`. Capacity given explicitly is applied
   * (re-adding a host may resize its machine); otherwise an existing machine keeps its own.
   */
  async ensureMachine(address: string, capacity: Partial<HostCapacity> = {}): Promise<void> {
    const explicit = {
      ...(capacity.cpu ? { cpu: capacity.cpu } : {}),
      ...(capacity.memory ? { memory: capacity.memory } : {}),
    };
    await this.o.db
      .insertInto('simulatorHosts')
      .values({
        address,
        cpu: DEFAULT_SIMULATED_CAPACITY.cpu,
        memory: DEFAULT_SIMULATED_CAPACITY.memory,
        ...explicit,
      })
      .onConflict((oc) =>
        Object.keys(explicit).length > 0
          ? oc.column('address').doUpdateSet(explicit)
          : oc.column('address').doNothing(),
      )
      .execute();
  }

  /** Powers a simulated machine off (it stops answering, its VMs are gone) or on again. */
  async setPower(address: string, on: boolean): Promise<boolean> {
    const row = await this.o.db
      .selectFrom('simulatorHosts')
      .select('facts')
      .where('address', '=', address)
      .executeTakeFirst();
    if (!row) return false;
    await this.o.db
      .updateTable('simulatorHosts')
      .set({ facts: JSON.stringify({ ...row.facts, poweredOff: !on }) })
      .where('address', '=', address)
      .execute();
    if (!on) {
      await this.o.db.deleteFrom('simulatorVms').where('hostAddress', '=', address).execute();
      this.bootedAt.delete(address);
    }
    return true;
  }

  /** Changes what a simulated hypervisor says about a VM, behind the platform's back (drift). */
  async setVmState(vmUuid: string, state: 'Running' | 'Stopped' | 'Paused' | 'Absent'): Promise<boolean> {
    if (state === 'Absent') {
      const gone = await this.o.db.deleteFrom('simulatorVms').where('vmUuid', '=', vmUuid).executeTakeFirst();
      return Number(gone.numDeletedRows) > 0;
    }
    const res = await this.o.db
      .updateTable('simulatorVms')
      .set({ state, updatedAt: new Date() })
      .where('vmUuid', '=', vmUuid)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    if (this.o.latencyMs) await new Promise((r) => setTimeout(r, this.o.latencyMs));
    await this.o.faults.check(`command:${command}`, host.managementIp);
    const machine = await this.machine(host.managementIp);
    const handler = HANDLERS[command] as SimHandler<C>;
    return handler({ machine, request, world: this.o.db });
  }

  private async machine(address: string): Promise<Machine> {
    const row = await this.o.db
      .selectFrom('simulatorHosts')
      .selectAll()
      .where('address', '=', address)
      .executeTakeFirst();
    if (!row) {
      throw new CloudError('Unavailable', 'HOST_UNREACHABLE', `no simulated host answers at ${address}`, {
        details: { address },
        retryable: true,
      });
    }
    let bootedAt = this.bootedAt.get(address);
    if (bootedAt === undefined) {
      bootedAt = Date.now();
      this.bootedAt.set(address, bootedAt);
    }
    return { address, cpu: row.cpu, memory: row.memory, bootedAt };
  }
}
