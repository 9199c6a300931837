/**
 * A cluster of management nodes on one database (issue 10, docs/cluster.md):
 * - `jobs.queue_slot`: the slot a Running job holds in its resource's queue. The unique index
 *   over (queue_key, queue_slot) of Running jobs is what serializes the operations on one
 *   resource across every node: a claim takes a free slot or fails on the index, atomically,
 *   whatever the other nodes do at the same moment.
 * - `management_nodes.version`, `draining_at`: what `management-nodes` shows;
 *   `fenced_by`: the node that declared this one dead, fenced it (its database sessions ended,
 *   new ones refused) and took its work over.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('queue_slot', 'smallint').execute();
  await sql`create unique index jobs_queue_slot_idx on jobs (queue_key, queue_slot) where state = 'Running'`.execute(
    db,
  );
  await sql`create index jobs_queue_unfinished_idx on jobs (queue_key) where state in ('Pending','Running')`.execute(
    db,
  );
  await db.schema
    .alterTable('management_nodes')
    .addColumn('version', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('draining_at', 'timestamptz')
    .addColumn('fenced_by', 'uuid')
    .execute();
}
