/**
 * Storage: what the storage services need beyond 0002.
 * - `image_cache.path` (where the host put the copy: later VMs clone from it, and callers that
 *   waited for another caller's copy need it) and `image_cache.shared` (the entry was handed to a
 *   caller other than its creator, so the creator's rollback must not remove it);
 * - the simulated backup storage's own world (its capacity and the images it holds), apart from
 *   the platform's records, like `simulator_hosts`;
 * - `primary_storages_with_capacity`: primary storages with their capacity as the API shows it.
 *   Local storage keeps its usage per host (`primary_storage_hosts`, no hot row), so its totals
 *   are sums; a view lets lists filter and sort on them in one statement. Scalar subqueries (not
 *   a GROUP BY) keep the view lockable (`FOR SHARE`), which tagging needs.
 *   A column added to `primary_storages` later must be added to this view too.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('image_cache').addColumn('path', 'text').execute();
  await db.schema
    .alterTable('image_cache')
    .addColumn('shared', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema.createIndex('image_cache_image_idx').on('image_cache').column('image_uuid').execute();

  await db.schema
    .createTable('simulator_backup_storages')
    .addColumn('url', 'text', (c) => c.primaryKey())
    .addColumn('capacity', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('simulator_backup_storage_images')
    .addColumn('url', 'text', (c) =>
      c.notNull().references('simulator_backup_storages.url').onDelete('cascade'),
    )
    .addColumn('image_uuid', 'uuid', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('simulator_backup_storage_images_pkey', ['url', 'image_uuid'])
    .execute();

  await sql`
    create view primary_storages_with_capacity as
    select p.uuid, p.name, p.description, p.account_uuid, p.created_at, p.updated_at,
           p.type, p.url, p.zone_uuid, p.state, p.status, p.over_provisioning_ratio,
           p.capacity_total as capacity,
           c.total as capacity_total,
           c.used as capacity_used,
           (floor(c.total * p.over_provisioning_ratio))::bigint - c.used as capacity_available
    from primary_storages p
    cross join lateral (
      select
        case when p.type = 'local'
          then (select coalesce(sum(h.capacity_total), 0) from primary_storage_hosts h
                where h.primary_storage_uuid = p.uuid)
          else p.capacity_total end::bigint as total,
        case when p.type = 'local'
          then (select coalesce(sum(h.capacity_used), 0) from primary_storage_hosts h
                where h.primary_storage_uuid = p.uuid)
          else p.capacity_used end::bigint as used
    ) c`.execute(db);
}
