/**
 * VIP services and virtual routers (docs/network.md):
 * - `eips_with_addresses`: EIPs as the API shows them, with the VIP's address (`ip`) and the
 *   NIC's (`guest_ip`), so lists filter and sort on them in one statement. Scalar subqueries
 *   (not outer joins) keep the view lockable (`FOR SHARE`), which tagging needs. A column added
 *   to `eips` later must be added here too.
 * - an EIP's or a port-forwarding rule's NIC going away (its VM expunged, the NIC detached)
 *   unmaps it (ON DELETE SET NULL) instead of blocking the NIC's deletion: the rule stays, as in
 *   ZStack, and the router's next sync (which the NIC's removal triggers) drops the mapping.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create view eips_with_addresses as
    select e.uuid, e.name, e.description, e.account_uuid, e.created_at, e.updated_at,
           e.vip_uuid, e.vm_nic_uuid, e.state,
           (select v.ip from vips v where v.uuid = e.vip_uuid) as ip,
           (select n.ip from vm_nics n where n.uuid = e.vm_nic_uuid) as guest_ip
    from eips e`.execute(db);
  for (const table of ['eips', 'port_forwarding_rules']) {
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(`${table}_vm_nic_uuid_fkey`)}`.execute(
      db,
    );
    await sql`alter table ${sql.table(table)} add constraint ${sql.ref(`${table}_vm_nic_uuid_fkey`)}
      foreign key (vm_nic_uuid) references vm_nics (uuid) on delete set null`.execute(db);
  }
}
