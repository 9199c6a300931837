/**
 * Neutron routers (docs/openstack-network-volume.md "Routers"). Nimbus routes a private L3
 * through its own virtual router, made on demand and uplinked to its offering's public L3; it has
 * no resource that names a group of L3s. A Neutron router is exactly that name and grouping, so
 * the façade keeps only it here — the routing itself stays the L3s' virtual routers:
 * - `openstack_routers`: a router's name, owner and external network (a public L3);
 * - `openstack_router_interfaces`: which L3 (through which of its ranges, the subnet) a router
 *   joins; an L3 is on one router at most (its primary key), as a Nimbus L3 has one router.
 *   `uuid` is the interface's port id (Neutron shows a router interface as a port whose address
 *   is the subnet's gateway — the address the L3's virtual router holds on it).
 * A deleted L3 leaves its routers (interface gone: cascade); a deleted public L3 clears the
 * gateway (set null), so the native API never trips over façade rows.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table openstack_routers (
      uuid uuid primary key,
      account_uuid uuid not null references accounts (uuid) on delete cascade,
      name text not null default '',
      description text not null default '',
      external_l3_network_uuid uuid references l3_networks (uuid) on delete set null,
      admin_state_up boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index openstack_routers_account_idx on openstack_routers (account_uuid, uuid)`.execute(db);
  await sql`
    create table openstack_router_interfaces (
      l3_network_uuid uuid primary key references l3_networks (uuid) on delete cascade,
      uuid uuid not null unique,
      router_uuid uuid not null references openstack_routers (uuid) on delete cascade,
      ip_range_uuid uuid references ip_ranges (uuid) on delete set null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index openstack_router_interfaces_router_idx on openstack_router_interfaces (router_uuid)`.execute(
    db,
  );
}
