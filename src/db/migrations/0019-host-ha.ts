/**
 * Host HA (issue 10 item 4, docs/hosts.md "Host HA"):
 * - `clusters.host_ha`: fence a silent host of this cluster and restart its HA VMs elsewhere
 *   (default off: without a fence nothing may be restarted, and fencing powers machines off);
 * - `hosts.fenced_at`: when the host was last confirmed fenced (cleared when it answers again);
 *   a host that answers while set is told to destroy every guest it still reports that the
 *   platform has elsewhere or stopped (it comes back running none of the moved VMs);
 * - `vms.ha_level`: none | restart-on-failure | restart-on-host-failure;
 * - `host_fence_credentials`: a kvm host's IPMI address and credentials, apart from the `hosts`
 *   row (like `host_secrets`): never returned by any query, job or event.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('clusters')
    .addColumn('host_ha', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema.alterTable('hosts').addColumn('fenced_at', 'timestamptz').execute();
  await db.schema
    .alterTable('vms')
    .addColumn('ha_level', 'text', (c) =>
      c
        .notNull()
        .defaultTo('none')
        .check(sql`ha_level in ('none', 'restart-on-failure', 'restart-on-host-failure')`),
    )
    .execute();
  await db.schema
    .createTable('host_fence_credentials')
    .addColumn('host_uuid', 'uuid', (c) => c.primaryKey().references('hosts.uuid').onDelete('cascade'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('password', 'text', (c) => c.notNull())
    .execute();
}
