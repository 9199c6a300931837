/**
 * Volumes, snapshots and quotas beyond 0002: the path the storage gave each volume and snapshot
 * (hosts address them by it), a uuid per quota row (every API resource has one), and the
 * `quota_usage` view that serves `GET /v1/quotas` with the limit under its API name. The
 * reaper finds expired Deleted volumes through a partial index.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('volumes').addColumn('path', 'text').execute();
  await db.schema.alterTable('volume_snapshots').addColumn('path', 'text').execute();
  await sql`create index volumes_deleted_idx on volumes (deleted_at) where state = 'Deleted'`.execute(db);
  await sql`create index volume_snapshots_parent_idx on volume_snapshots (parent_uuid)`.execute(db);

  await db.schema
    .alterTable('quotas')
    .addColumn('uuid', 'uuid', (c) => c.notNull().defaultTo(sql`gen_random_uuid()`))
    .execute();
  await db.schema.createIndex('quotas_uuid_key').on('quotas').column('uuid').unique().execute();
  await sql`create view quota_usage as
    select uuid, account_uuid, name, limit_value as "limit", used, updated_at from quotas`.execute(db);
}
