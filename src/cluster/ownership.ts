/**
 * Which management node owns a resource: rendezvous (highest-random-weight) hashing over the
 * live nodes in `management_nodes`, computed in SQL so every node reaches the same answer from
 * the same table, and a node's death moves only its own share to the others. Ownership decides
 * who does periodic work on a resource (reconciling a host), never who may serve a request: any
 * node accepts any request, and the database keeps each change conditional.
 */
import { type RawBuilder, sql } from 'kysely';
import { DEFAULT_DEAD_AFTER_MS } from './membership.js';

/**
 * A condition true for the rows of `table` (its `uuid` column) that node `nodeId` owns among the
 * nodes that are alive (not stopped, heartbeat fresher than `deadAfterMs`). A node whose own
 * heartbeat went stale owns nothing until it beats again; the others take its share meanwhile.
 */
export function ownedBy(
  table: string,
  nodeId: string,
  deadAfterMs = DEFAULT_DEAD_AFTER_MS,
): RawBuilder<boolean> {
  return sql<boolean>`${nodeId}::uuid = (
    select n.uuid from management_nodes n
    where n.stopped_at is null and n.heartbeat_at > now() - ${deadAfterMs} * interval '1 millisecond'
    order by md5(${sql.ref(`${table}.uuid`)}::text || n.uuid::text) desc
    limit 1)`;
}
