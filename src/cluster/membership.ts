/**
 * Management-node membership in PostgreSQL: each process registers a fresh node row and
 * heartbeats it. A node is dead when it stopped cleanly, when its heartbeat is older than
 * `deadAfterMs`, or when it is an earlier incarnation with this node's name (a restart after a
 * crash must not wait out the timeout). Dead nodes' jobs are taken over through the engine.
 * The heartbeat and the takeover run independently: a slow takeover (a busy database, many rows
 * to reclaim) never holds back the next beat, or the node would look dead to the others; a beat
 * that fails (a lost connection) is logged and the next one tries again.
 * A takeover first fences the silent nodes (fence.ts): their sessions end before their work is
 * claimed. A beat that finds this node stopped (another node fenced it) says so (`onFenced`).
 * A node judges others silent only after heartbeating without a break for dead-after itself
 * (beat-continuity.ts): after a database failover the first node back fences nobody.
 */
import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/pool.js';
import { newId } from '../kernel/ids.js';
import { BeatContinuity } from './beat-continuity.js';
import { endStoppedSessions, fenceSilentNodes } from './fence.js';

export interface MembershipOptions {
  db: Db;
  name: string;
  address: string;
  log: Logger;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /**
   * where the heartbeat is written: a connection of its own, so that a beat never waits behind
   * the node's work for a connection of the main pool (a busy node must not look dead)
   */
  beatDb?: Db;
  /** this node's uuid (default: a new one) */
  nodeId?: string;
  version?: string;
  /** a heartbeat found this node stopped: another node declared it dead and fenced it */
  onFenced?: () => void;
  /** told, on every heartbeat, how many other nodes are alive */
  onPeers?: (count: number) => void;
  /** takes over the work of nodes silent for longer than the given milliseconds */
  onTakeOver(deadAfterMs: number): Promise<unknown>;
}

export const DEFAULT_DEAD_AFTER_MS = 15_000;

export function defaultNodeName(port: number): string {
  return `${hostname()}:${port}`;
}

export class Membership {
  readonly nodeId: string;
  private timer: NodeJS.Timeout | undefined;
  private beating = false;
  private taking = false;
  /** whether this node's own beats went on long enough for it to judge others silent */
  private readonly continuity: BeatContinuity;

  constructor(private readonly o: MembershipOptions) {
    this.nodeId = o.nodeId ?? newId();
    this.continuity = new BeatContinuity(o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS);
  }

  async join(): Promise<void> {
    await this.o.db
      .insertInto('managementNodes')
      .values({
        uuid: this.nodeId,
        name: this.o.name,
        address: this.o.address,
        version: this.o.version ?? '',
      })
      .execute();
    // earlier incarnations of this node are dead by definition (fenced like any dead node)
    await this.o.db
      .updateTable('managementNodes')
      .set({ stoppedAt: new Date(), fencedBy: this.nodeId })
      .where('name', '=', this.o.name)
      .where('uuid', '!=', this.nodeId)
      .where('stoppedAt', 'is', null)
      .execute();
    // beating from now on: the first takeover may take a while on a busy database
    const every = this.o.heartbeatMs ?? 2000;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
    this.taking = true;
    try {
      await endStoppedSessions(this.o.db);
      await this.takeOver();
    } finally {
      this.taking = false;
    }
  }

  /** Shown by `management-nodes` (state Draining) while the node stops. */
  async draining(): Promise<void> {
    await this.o.db
      .updateTable('managementNodes')
      .set({ drainingAt: new Date() })
      .where('uuid', '=', this.nodeId)
      .execute();
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
      void (this.o.beatDb ?? this.o.db)
        .updateTable('managementNodes')
        .set({ heartbeatAt: sql`now()` })
        .where('uuid', '=', this.nodeId)
        .where('stoppedAt', 'is', null)
        .returning(
          sql<number>`(select count(*)::int from management_nodes o where o.uuid <> ${this.nodeId}
            and o.stopped_at is null
            and o.heartbeat_at > now() - ${this.o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS} * interval '1 millisecond')`.as(
            'peers',
          ),
        )
        .executeTakeFirst()
        .then((row) => {
          if (!row) return this.o.onFenced?.();
          this.continuity.succeeded();
          this.o.onPeers?.(Number(row.peers));
        })
        .catch((err) => {
          this.continuity.failed();
          this.o.log.warn({ err }, 'heartbeat failed');
        })
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

  /**
   * Fences the nodes silent for longer than dead-after (when this node may judge: see the header),
   * then hands the work of dead nodes to the engine, which claims it atomically — only once no
   * dead node has a session left.
   */
  async takeOver(): Promise<void> {
    const deadAfterMs = this.o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS;
    const { fenced, sessionsLeft } = this.continuity.mayJudgeSilence()
      ? await fenceSilentNodes(this.o.db, this.nodeId, deadAfterMs)
      : { fenced: [], sessionsLeft: await endStoppedSessions(this.o.db) };
    if (fenced.length > 0)
      this.o.log.warn({ nodes: fenced, deadAfterMs }, 'fenced management nodes that stopped heartbeating');
    if (sessionsLeft > 0) {
      this.o.log.warn(
        { sessionsLeft },
        'dead nodes still have database sessions; their work waits for the next pass',
      );
      return;
    }
    await this.o.onTakeOver(deadAfterMs);
  }
}
