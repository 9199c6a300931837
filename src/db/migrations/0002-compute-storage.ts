/**
 * Compute and storage: offerings, backup storage and images, primary storage (with per-host
 * capacity for local storage) and its image cache, VMs, volumes, snapshots, affinity groups,
 * quotas. Capacity columns are changed only by conditional UPDATEs (see each store).
 */
import { type CreateTableBuilder, type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  const now = sql`now()`;
  const common = <T extends string>(t: CreateTableBuilder<T, never>) =>
    t
      .addColumn('uuid', 'uuid', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('account_uuid', 'uuid', (c) => c.notNull())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now));

  await common(db.schema.createTable('instance_offerings'))
    .addColumn('cpu', 'integer', (c) => c.notNull().check(sql`cpu > 0`))
    .addColumn('memory', 'bigint', (c) => c.notNull().check(sql`memory > 0`))
    .addColumn('allocator_strategy', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await db.schema
    .createIndex('instance_offerings_name_key')
    .on('instance_offerings')
    .column('name')
    .unique()
    .execute();

  await common(db.schema.createTable('disk_offerings'))
    .addColumn('size', 'bigint', (c) => c.notNull().check(sql`size > 0`))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await db.schema
    .createIndex('disk_offerings_name_key')
    .on('disk_offerings')
    .column('name')
    .unique()
    .execute();

  await common(db.schema.createTable('backup_storages'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('capacity_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('capacity_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('Connecting'))
    .execute();
  await db.schema
    .createIndex('backup_storages_name_key')
    .on('backup_storages')
    .column('name')
    .unique()
    .execute();
  await db.schema
    .createTable('backup_storage_zones')
    .addColumn('backup_storage_uuid', 'uuid', (c) =>
      c.notNull().references('backup_storages.uuid').onDelete('cascade'),
    )
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid').onDelete('restrict'))
    .addPrimaryKeyConstraint('backup_storage_zones_pkey', ['backup_storage_uuid', 'zone_uuid'])
    .execute();

  await common(db.schema.createTable('images'))
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('guest_os_type', 'text')
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('actual_size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('min_disk', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('is_public', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('backup_storage_uuid', 'uuid', (c) =>
      c.references('backup_storages.uuid').onDelete('restrict'),
    )
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('images_account_idx').on('images').columns(['account_uuid', 'state']).execute();

  await common(db.schema.createTable('primary_storages'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid').onDelete('restrict'))
    .addColumn('capacity_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('capacity_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('over_provisioning_ratio', 'numeric', (c) => c.notNull().defaultTo(1))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('Connected'))
    .execute();
  await db.schema
    .createIndex('primary_storages_name_key')
    .on('primary_storages')
    .column('name')
    .unique()
    .execute();
  await db.schema
    .createTable('primary_storage_clusters')
    .addColumn('primary_storage_uuid', 'uuid', (c) =>
      c.notNull().references('primary_storages.uuid').onDelete('cascade'),
    )
    .addColumn('cluster_uuid', 'uuid', (c) => c.notNull().references('clusters.uuid').onDelete('restrict'))
    .addPrimaryKeyConstraint('primary_storage_clusters_pkey', ['primary_storage_uuid', 'cluster_uuid'])
    .execute();
  await db.schema
    .createIndex('primary_storage_clusters_cluster_idx')
    .on('primary_storage_clusters')
    .column('cluster_uuid')
    .execute();
  // local storage: each host has its own share of the storage, reserved row by row (no hot row)
  await db.schema
    .createTable('primary_storage_hosts')
    .addColumn('primary_storage_uuid', 'uuid', (c) =>
      c.notNull().references('primary_storages.uuid').onDelete('cascade'),
    )
    .addColumn('host_uuid', 'uuid', (c) => c.notNull().references('hosts.uuid').onDelete('cascade'))
    .addColumn('capacity_total', 'bigint', (c) => c.notNull())
    .addColumn('capacity_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('primary_storage_hosts_pkey', ['primary_storage_uuid', 'host_uuid'])
    .execute();
  await db.schema
    .createIndex('primary_storage_hosts_host_idx')
    .on('primary_storage_hosts')
    .column('host_uuid')
    .execute();

  // one cached copy of an image per storage (and per host for local storage)
  await db.schema
    .createTable('image_cache')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('primary_storage_uuid', 'uuid', (c) =>
      c.notNull().references('primary_storages.uuid').onDelete('cascade'),
    )
    .addColumn('host_uuid', 'uuid', (c) => c.references('hosts.uuid').onDelete('cascade'))
    .addColumn('image_uuid', 'uuid', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await sql`create unique index image_cache_place_key on image_cache (primary_storage_uuid, host_uuid, image_uuid) nulls not distinct`.execute(
    db,
  );

  await common(db.schema.createTable('affinity_groups'))
    .addColumn('policy', 'text', (c) => c.notNull().check(sql`policy in ('affinity','anti-affinity')`))
    .addColumn('enforcement', 'text', (c) => c.notNull().check(sql`enforcement in ('hard','soft')`))
    .execute();

  await common(db.schema.createTable('vms'))
    .addColumn('zone_uuid', 'uuid', (c) => c.references('zones.uuid'))
    .addColumn('cluster_uuid', 'uuid', (c) => c.references('clusters.uuid'))
    .addColumn('host_uuid', 'uuid', (c) => c.references('hosts.uuid'))
    .addColumn('last_host_uuid', 'uuid')
    .addColumn('instance_offering_uuid', 'uuid', (c) =>
      c.references('instance_offerings.uuid').onDelete('set null'),
    )
    .addColumn('image_uuid', 'uuid')
    .addColumn('root_volume_uuid', 'uuid')
    .addColumn('cpu', 'integer', (c) => c.notNull())
    .addColumn('memory', 'bigint', (c) => c.notNull())
    .addColumn('platform', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('task', 'text')
    .addColumn('power_state', 'text', (c) => c.notNull().defaultTo('NoState'))
    .addColumn('affinity_group_uuid', 'uuid', (c) =>
      c.references('affinity_groups.uuid').onDelete('restrict'),
    )
    .addColumn('placement', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('destroyed_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('vms_state_idx').on('vms').columns(['state', 'uuid']).execute();
  await db.schema.createIndex('vms_host_idx').on('vms').column('host_uuid').execute();
  await db.schema.createIndex('vms_account_idx').on('vms').columns(['account_uuid', 'created_at']).execute();
  await db.schema.createIndex('vms_created_idx').on('vms').column('created_at').execute();
  await db.schema.createIndex('vms_name_idx').on('vms').column('name').execute();
  await db.schema.createIndex('vms_affinity_idx').on('vms').column('affinity_group_uuid').execute();

  await common(db.schema.createTable('volumes'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('Root','Data')`))
    .addColumn('vm_uuid', 'uuid', (c) => c.references('vms.uuid').onDelete('set null'))
    .addColumn('device_id', 'integer')
    .addColumn('primary_storage_uuid', 'uuid', (c) => c.references('primary_storages.uuid'))
    .addColumn('host_uuid', 'uuid', (c) => c.references('hosts.uuid'))
    .addColumn('disk_offering_uuid', 'uuid')
    .addColumn('image_uuid', 'uuid')
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('actual_size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('format', 'text', (c) => c.notNull().defaultTo('qcow2'))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('delete_with_vm', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('volumes_vm_idx').on('volumes').column('vm_uuid').execute();
  await db.schema.createIndex('volumes_ps_idx').on('volumes').column('primary_storage_uuid').execute();
  await db.schema
    .createIndex('volumes_account_idx')
    .on('volumes')
    .columns(['account_uuid', 'created_at'])
    .execute();
  // one device number per VM
  await sql`create unique index volumes_vm_device_key on volumes (vm_uuid, device_id) where vm_uuid is not null`.execute(
    db,
  );

  await common(db.schema.createTable('volume_snapshots'))
    .addColumn('volume_uuid', 'uuid', (c) => c.notNull().references('volumes.uuid').onDelete('cascade'))
    .addColumn('parent_uuid', 'uuid', (c) => c.references('volume_snapshots.uuid').onDelete('restrict'))
    .addColumn('primary_storage_uuid', 'uuid', (c) => c.references('primary_storages.uuid'))
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('latest', 'boolean', (c) => c.notNull().defaultTo(true))
    .execute();
  await db.schema
    .createIndex('volume_snapshots_volume_idx')
    .on('volume_snapshots')
    .column('volume_uuid')
    .execute();

  // quotas: limits per account (defaults in code when absent) and usage counters changed only
  // by conditional UPDATEs — one row per account and resource, never a global hot row
  await db.schema
    .createTable('quotas')
    .addColumn('account_uuid', 'uuid', (c) => c.notNull().references('accounts.uuid').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('limit_value', 'bigint', (c) => c.notNull())
    .addColumn('used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('quotas_pkey', ['account_uuid', 'name'])
    .addCheckConstraint('quotas_used_nonnegative', sql`used >= 0`)
    .execute();

  // the simulator's world: VMs as the simulated hypervisors see them
  await db.schema
    .createTable('simulator_vms')
    .addColumn('vm_uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('host_address', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('cpu', 'integer', (c) => c.notNull())
    .addColumn('memory', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('simulator_vms_host_idx').on('simulator_vms').column('host_address').execute();

  await db.schema
    .alterTable('hosts')
    .addColumn('vm_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('hosts').addColumn('last_seen_at', 'timestamptz').execute();
}
