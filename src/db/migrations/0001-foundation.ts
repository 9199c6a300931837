/** Foundation: identity, management nodes, jobs + flow journal, events, tags, zone/cluster/host. */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  const now = sql`now()`;
  await db.schema
    .createTable('accounts')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('admin','normal')`))
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('account_uuid', 'uuid', (c) => c.notNull().references('accounts.uuid').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addUniqueConstraint('users_account_name_key', ['account_uuid', 'name'])
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_uuid', 'uuid', (c) => c.notNull().references('users.uuid').onDelete('cascade'))
    .addColumn('account_uuid', 'uuid', (c) => c.notNull().references('accounts.uuid').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('management_nodes')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('heartbeat_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('stopped_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('Pending','Running','Succeeded','Failed','Cancelled')`),
    )
    .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('progress_message', 'text')
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('user_uuid', 'uuid')
    .addColumn('resource_kind', 'text')
    .addColumn('resource_uuid', 'uuid')
    .addColumn('queue_key', 'text', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('result', 'jsonb')
    .addColumn('error', 'jsonb')
    .addColumn('flow', 'jsonb')
    .addColumn('owner_node', 'uuid')
    .addColumn('request_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('jobs_resource_idx').on('jobs').column('resource_uuid').execute();
  await db.schema
    .createIndex('jobs_account_created_idx')
    .on('jobs')
    .columns(['account_uuid', 'created_at'])
    .execute();
  await db.schema.createIndex('jobs_created_idx').on('jobs').column('created_at').execute();
  // Unfinished jobs are what recovery and queue rebuilds look for: keep that set small and indexed.
  await sql`create index jobs_unfinished_idx on jobs (owner_node, created_at) where state in ('Pending','Running')`.execute(
    db,
  );

  await db.schema
    .createTable('events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('uuid', 'uuid', (c) => c.notNull().unique())
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('resource_kind', 'text', (c) => c.notNull())
    .addColumn('resource_uuid', 'uuid', (c) => c.notNull())
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('job_uuid', 'uuid')
    .addColumn('data', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema.createIndex('events_resource_idx').on('events').columns(['resource_uuid', 'id']).execute();
  await db.schema.createIndex('events_account_idx').on('events').columns(['account_uuid', 'id']).execute();
  await db.schema.createIndex('events_at_idx').on('events').column('at').execute();

  await db.schema
    .createTable('tags')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('resource_kind', 'text', (c) => c.notNull())
    .addColumn('resource_uuid', 'uuid', (c) => c.notNull())
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addUniqueConstraint('tags_resource_key_key', ['resource_uuid', 'key'])
    .execute();
  await db.schema.createIndex('tags_key_value_idx').on('tags').columns(['key', 'value']).execute();

  await db.schema
    .createTable('zones')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('zones_name_key').on('zones').column('name').unique().execute();

  await db.schema
    .createTable('clusters')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid').onDelete('restrict'))
    .addColumn('hypervisor_type', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addUniqueConstraint('clusters_zone_name_key', ['zone_uuid', 'name'])
    .execute();

  await db.schema
    .createTable('hosts')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid').onDelete('restrict'))
    .addColumn('cluster_uuid', 'uuid', (c) => c.notNull().references('clusters.uuid').onDelete('restrict'))
    .addColumn('hypervisor_type', 'text', (c) => c.notNull())
    .addColumn('management_ip', 'text', (c) => c.notNull().unique())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('Connecting'))
    .addColumn('cpu_total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cpu_used', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('memory_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('memory_used', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('hosts_cluster_idx').on('hosts').column('cluster_uuid').execute();
  await db.schema.createIndex('hosts_state_status_idx').on('hosts').columns(['state', 'status']).execute();

  await db.schema
    .createTable('simulator_hosts')
    .addColumn('address', 'text', (c) => c.primaryKey())
    .addColumn('cpu', 'integer', (c) => c.notNull())
    .addColumn('memory', 'bigint', (c) => c.notNull())
    .addColumn('facts', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
}
