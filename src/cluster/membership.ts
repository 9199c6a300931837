/**
 * Management-node membership in PostgreSQL: each process registers a fresh node row and
 * heartbeats it. A node is dead when it stopped cleanly, when its heartbeat is older than
 * `deadAfterMs`, or when it is an earlier incarnation with this node's name (a restart after a
 * crash must not wait out the timeout). Dead nodes' jobs are taken over through the engine.
 * The heartbeat and the takeover run independently: a slow takeover (a busy database, many rows
 * to reclaim) never holds back the next beat, or the node would look dead to the others; a beat
 * that fails (a lost connection) is logged and the next one tries again.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Db } from '../db/pool.js';
import { newId } from '../kernel/ids.js';

export interface MembershipOptions {
  db: Db;
  name: string;
  address: string;
  log: Logger;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** takes over the work of nodes silent for longer than the given milliseconds */
  onTakeOver(deadAfterMs: number): Promise<unknown>;
}

export const DEFAULT_DEAD_AFTER_MS = 15_000;

export function defaultNodeName(port: number): string {
  return `${hostname()}:${port}`;
}

export class Membership {
  readonly nodeId = newId();
  private timer: NodeJS.Timeout | undefined;
  private beating = false;
  private taking = false;

  constructor(private readonly o: MembershipOptions) {}

  async join(): Promise<void> {
    await this.o.db
      .insertInto('managementNodes')
      .values({ uuid: this.nodeId, name: this.o.name, address: this.o.address })
      .execute();
    // earlier incarnations of this node are dead by definition
    await this.o.db
      .updateTable('managementNodes')
      .set({ stoppedAt: new Date() })
      .where('name', '=', this.o.name)
      .where('uuid', '!=', this.nodeId)
      .where('stoppedAt', 'is', null)
      .execute();
    await this.takeOver();
    const every = this.o.heartbeatMs ?? 2000;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.o.db
      .updateTable('managementNodes')
      .set({ stoppedAt: new Date() })
      .where('uuid', '=', this.nodeId)
      .execute();
  }

  private tick(): void {
    if (!this.beating) {
      this.beating = true;
      void this.o.db
        .updateTable('managementNodes')
        .set({ heartbeatAt: new Date() })
        .where('uuid', '=', this.nodeId)
        .execute()
        .catch((err) => this.o.log.warn({ err }, 'heartbeat failed'))
        .finally(() => {
          this.beating = false;
        });
    }
    if (!this.taking) {
      this.taking = true;
      void this.takeOver()
        .catch((err) => this.o.log.warn({ err }, 'taking over the work of dead nodes failed'))
        .finally(() => {
          this.taking = false;
        });
    }
  }

  /** Hands the work of dead nodes to the engine, which claims it atomically. */
  async takeOver(): Promise<void> {
    await this.o.onTakeOver(this.o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS);
  }
}
