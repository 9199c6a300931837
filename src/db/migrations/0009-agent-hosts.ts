/**
 * Real hosts and storages behind a nimbus-agent (docs/hosts.md):
 * - `hosts.agent_port` (null = the default 7070), `accelerator` and `hypervisor_version` (what the
 *   agent said at its last connect: kvm or tcg, e.g. "QEMU 7.2.22");
 * - `host_secrets` / `backup_storage_secrets`: the agent's bearer secret, apart from the resource
 *   row so no query of the resource (list, get, search, views) can ever return it. A row goes with
 *   its host or storage (ON DELETE CASCADE).
 */
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('hosts')
    .addColumn('agent_port', 'integer')
    .addColumn('accelerator', 'text')
    .addColumn('hypervisor_version', 'text')
    .execute();
  await db.schema
    .createTable('host_secrets')
    .addColumn('host_uuid', 'uuid', (c) => c.primaryKey().references('hosts.uuid').onDelete('cascade'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('backup_storage_secrets')
    .addColumn('backup_storage_uuid', 'uuid', (c) =>
      c.primaryKey().references('backup_storages.uuid').onDelete('cascade'),
    )
    .addColumn('secret', 'text', (c) => c.notNull())
    .execute();
}
