/**
 * L2/L3 networks as the API shows them (docs/network.md):
 * - `ip_ranges.gateway_number`: the gateway as a number, so SQL can tell whether it lies in a
 *   range (the capacity below must not count it);
 * - `l3_ip_total(l3)`: the addresses IPAM may hand out — normal ranges less the reserved parts
 *   and the gateways inside them (ranges of one type never overlap, so the sums are exact),
 *   capped at 2^53 - 1 (a /64 holds more than a JSON number says exactly);
 * - `l3_networks_with_capacity`: L3s with ip_total, ip_used (every allocated address) and
 *   ip_free (total less the allocated addresses that are not gateways: a router's guest address
 *   is the gateway, which total never counted) — counts over the (l3, ip_number) index, no
 *   counter row that every allocation would update;
 * - `l2_networks_with_clusters`: L2s with the clusters they are attached to.
 * Scalar subqueries and functions (no joins, no aggregates at the top) keep the views lockable
 * (`FOR SHARE`), which tagging needs. A column added to `l2_networks` or `l3_networks` later
 * must be added here too.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table ip_ranges add column gateway_number numeric(39, 0)`.execute(db);

  await sql`
    create function l3_ip_total(l3 uuid) returns bigint language sql stable as $$
      select least(
        coalesce((select sum(n.last_number - n.first_number + 1) from ip_ranges n
                  where n.l3_network_uuid = l3 and n.type = 'normal'), 0)
        - coalesce((select sum(greatest(least(n.last_number, r.last_number)
                                        - greatest(n.first_number, r.first_number) + 1, 0))
                    from ip_ranges n join ip_ranges r on r.l3_network_uuid = l3 and r.type = 'reserved'
                    where n.l3_network_uuid = l3 and n.type = 'normal'), 0)
        - (select count(distinct g.gateway_number) from ip_ranges g
           where g.l3_network_uuid = l3 and g.gateway_number is not null
             and exists (select 1 from ip_ranges n where n.l3_network_uuid = l3 and n.type = 'normal'
                         and g.gateway_number between n.first_number and n.last_number)
             and not exists (select 1 from ip_ranges r where r.l3_network_uuid = l3 and r.type = 'reserved'
                             and g.gateway_number between r.first_number and r.last_number)),
        9007199254740991)::bigint
    $$`.execute(db);

  await sql`
    create function l3_ip_pooled(l3 uuid) returns bigint language sql stable as $$
      select count(*) from ip_addresses a
      where a.l3_network_uuid = l3
        and not exists (select 1 from ip_ranges g where g.l3_network_uuid = l3 and g.gateway_number = a.ip_number)
    $$`.execute(db);

  await sql`
    create view l3_networks_with_capacity as
    select l.uuid, l.name, l.description, l.account_uuid, l.created_at, l.updated_at,
           l.l2_network_uuid, l.zone_uuid, l.category, l.ip_version, l.shared, l.dns, l.domain_name,
           l.mtu, l.host_routes, l.provider, l.ip_allocation, l.virtual_router_offering_uuid, l.state,
           l3_ip_total(l.uuid) as ip_total,
           (select count(*) from ip_addresses a where a.l3_network_uuid = l.uuid) as ip_used,
           greatest(l3_ip_total(l.uuid) - l3_ip_pooled(l.uuid), 0) as ip_free
    from l3_networks l`.execute(db);

  await sql`
    create view l2_networks_with_clusters as
    select l.uuid, l.name, l.description, l.account_uuid, l.created_at, l.updated_at,
           l.zone_uuid, l.type, l.physical_interface, l.vlan, l.vni, l.vxlan_pool_uuid,
           array(select c.cluster_uuid::text from l2_network_clusters c
                 where c.l2_network_uuid = l.uuid order by c.cluster_uuid) as cluster_uuids
    from l2_networks l`.execute(db);
}
