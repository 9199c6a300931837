/**
 * Compute: what VM lifecycles need beyond 0002. A live migration holds capacity on its target
 * host while it runs (`migration_target_uuid`), so the host invariant stays a plain sum:
 * for every host, used = Σ over VMs with host_uuid = it or migration_target_uuid = it.
 * The reaper finds expired Destroyed VMs through a partial index.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('vms')
    .addColumn('migration_target_uuid', 'uuid', (c) => c.references('hosts.uuid'))
    .execute();
  await sql`create index vms_destroyed_idx on vms (destroyed_at) where state = 'Destroyed'`.execute(db);
  await sql`create index vms_migration_target_idx on vms (migration_target_uuid) where migration_target_uuid is not null`.execute(
    db,
  );
}
