/**
 * This node's Pending jobs that nothing in this process will run. An admission whose COMMIT was
 * cut by the database — the primary died after the commit reached the synchronous standby but
 * before its answer reached the node — failed for its caller (DATABASE_UNAVAILABLE), so nobody
 * called `engine.start`; yet after the failover the row is there, Pending, owned by this live
 * node, and recovery only takes the jobs of dead nodes. Each recovery pass starts such jobs
 * (every chain then finishes or rolls back, as for any job). A job this process started and has
 * not finished — waiting in its queue, or for a queue slot held elsewhere — is known here and
 * left alone; so is a job younger than ORPHAN_AFTER_MS (its submitter may be about to start it).
 */
import { sql } from 'kysely';
import type { Db } from '../db/pool.js';

/** a submitter starts its job as soon as its commit returns: younger Pending jobs are left to it */
export const ORPHAN_AFTER_MS = 5000;

export class OrphanJobs {
  /** jobs started in this process and not finished (or given up) here */
  private readonly known = new Set<string>();

  started(uuid: string): void {
    this.known.add(uuid);
  }

  ended(uuid: string): void {
    this.known.delete(uuid);
  }

  /** This node's Pending jobs older than ORPHAN_AFTER_MS that this process does not know. */
  async find(db: Db, nodeId: string): Promise<Array<{ uuid: string; queueKey: string; kind: string }>> {
    const rows = await db
      .selectFrom('jobs')
      .select(['uuid', 'queueKey', 'kind'])
      .where('ownerNode', '=', nodeId)
      .where('state', '=', 'Pending')
      .where('createdAt', '<', sql<Date>`now() - make_interval(secs => ${ORPHAN_AFTER_MS / 1000})`)
      .execute();
    return rows.filter((r) => !this.known.has(r.uuid));
  }
}
