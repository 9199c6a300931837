/**
 * Whose work is still alive. A row left in a transitional state names the job that owns it
 * (docs/engine.md "Transitional rows"); the job names its node. The owner is alive while its job
 * is Pending or Running on a node that heartbeats (not stopped, heard from within
 * `deadAfterMs`). Anything else — the job ended, vanished, or its node died — is a dead owner,
 * whose rows recovery reclaims and whose waiters stop waiting.
 */
import { sql } from 'kysely';
import type { Db } from '../db/pool.js';

/** a node silent this long is dead (membership's heartbeat is 2 s) */
export const DEFAULT_DEAD_AFTER_MS = 15_000;

/** The uuids of live management nodes (a subquery). */
export function liveNodes(db: Db, deadAfterMs: number) {
  return db
    .selectFrom('managementNodes')
    .select('uuid')
    .where('stoppedAt', 'is', null)
    .where('heartbeatAt', '>=', sql<Date>`now() - make_interval(secs => ${deadAfterMs / 1000})`);
}

/** The uuids of jobs a live node owns and has not finished (a subquery). */
export function liveJobs(db: Db, deadAfterMs: number) {
  return db
    .selectFrom('jobs')
    .select('jobs.uuid')
    .where('jobs.state', 'in', ['Pending', 'Running'])
    .where('jobs.ownerNode', 'in', liveNodes(db, deadAfterMs));
}

/** Whether the job owning a row is gone: ended, missing, or on a dead node. */
export async function ownerGone(db: Db, jobUuid: string, deadAfterMs: number): Promise<boolean> {
  const row = await liveJobs(db, deadAfterMs).where('jobs.uuid', '=', jobUuid).executeTakeFirst();
  return row === undefined;
}

/**
 * Whether a job stopped without failing on its own: its node died, or recovery rolled it back
 * (JOB_INTERRUPTED). A caller that waited for its work then does that work itself instead of
 * failing with it.
 */
export async function ownerInterrupted(db: Db, jobUuid: string, deadAfterMs: number): Promise<boolean> {
  const job = await db
    .selectFrom('jobs')
    .select(['state', 'error', 'flow'])
    .where('uuid', '=', jobUuid)
    .executeTakeFirst();
  if (!job) return true;
  const code =
    (job.error as { code?: string } | null)?.code ??
    (job.flow?.failure as { code?: string } | undefined)?.code;
  if (code === 'JOB_INTERRUPTED') return true;
  if (job.state === 'Pending' || job.state === 'Running') return ownerGone(db, jobUuid, deadAfterMs);
  return false;
}
