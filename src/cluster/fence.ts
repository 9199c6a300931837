/**
 * Fencing: a node declared dead writes nothing more, whatever it was doing when it went silent
 * (a SIGSTOP, a long pause, a partition) — enforced by the database, not by timing:
 * 1. every database session of a node carries its uuid in `application_name` (sessionName);
 * 2. a survivor that finds a node silent for longer than dead-after marks it stopped
 *    (`stopped_at`, `fenced_by`) in one conditional UPDATE, then ends every session of every
 *    stopped node (pg_terminate_backend, waiting until each is gone: an open transaction of the
 *    dead node is rolled back, never committed later);
 * 3. a node checks, on each new connection, that it has not been stopped (FencedCheck): a
 *    fenced node that wakes up gets no connection, so none of its statements run again.
 * Only after 2 do survivors take the dead node's jobs over (engine.recover claims the jobs of
 * stopped nodes only), and a job row stays conditional on its owner (`owner_node = me`) too.
 */
import { sql } from 'kysely';
import type pg from 'pg';
import type { Db } from '../db/pool.js';
import { CloudError } from '../kernel/errors.js';

/** The `application_name` of every database session of node `nodeId` (at most 63 bytes). */
export function sessionName(nodeId: string): string {
  return `nimbus node ${nodeId}`;
}

/** how long ending one stopped node's session may take before this pass gives up on it */
const TERMINATE_WAIT_MS = 5000;

/**
 * Marks the nodes silent for longer than `deadAfterMs` stopped (fenced by `me`), then ends the
 * sessions of every stopped node. Returns whether no stopped node has a session left: only then
 * may their work be taken over.
 */
export async function fenceSilentNodes(
  db: Db,
  me: string,
  deadAfterMs: number,
): Promise<{
  fenced: string[];
  sessionsLeft: number;
}> {
  const fenced = await db
    .updateTable('managementNodes')
    .set({ stoppedAt: sql`now()`, fencedBy: me })
    .where('stoppedAt', 'is', null)
    .where('uuid', '!=', me)
    .where('heartbeatAt', '<', sql<Date>`now() - make_interval(secs => ${deadAfterMs / 1000})`)
    .returning('uuid')
    .execute();
  return { fenced: fenced.map((n) => n.uuid), sessionsLeft: await endStoppedSessions(db) };
}

/** Ends the sessions of stopped nodes still connected; returns how many could not be ended. */
export async function endStoppedSessions(db: Db): Promise<number> {
  const { rows } = await sql<{ ended: boolean }>`
    select pg_terminate_backend(a.pid, ${TERMINATE_WAIT_MS}::bigint) as ended
    from pg_stat_activity a
    join management_nodes n on a.application_name = 'nimbus node ' || n.uuid::text
    where n.stopped_at is not null and a.datname = current_database() and a.pid <> pg_backend_pid()`.execute(
    db,
  );
  return rows.filter((r) => !r.ended).length;
}

/**
 * The check every new connection of a node passes before its first statement (db/pool.ts
 * `verify`): armed once the node has joined (before, there is no row to be stopped), it refuses
 * the connection of a node that was stopped or fenced, and says so once through `onFenced`.
 */
export class FencedCheck {
  private nodeId: string | undefined;
  private told = false;

  constructor(private readonly onFenced: () => void) {}

  arm(nodeId: string): void {
    this.nodeId = nodeId;
  }

  /** Throws NODE_FENCED when this node has been stopped; the connection is then dropped. */
  readonly verify = async (client: pg.PoolClient): Promise<void> => {
    if (!this.nodeId) return;
    const { rows } = await client.query<{ stopped: boolean }>(
      'select stopped_at is not null as stopped from management_nodes where uuid = $1',
      [this.nodeId],
    );
    if (rows[0]?.stopped) {
      this.fenced();
      throw new CloudError(
        'Unavailable',
        'NODE_FENCED',
        'this management node was declared dead and fenced by another node; it must restart to serve again',
        { retryable: true },
      );
    }
  };

  /** The node learnt it was fenced (a refused connection, a heartbeat that found it stopped). */
  fenced(): void {
    if (this.told) return;
    this.told = true;
    this.onFenced();
  }
}
