/**
 * Networking (docs/network.md): L2 networks (no-vlan, vlan, vxlan from VNI pools) attached to
 * clusters, L3 networks with IP ranges, the IP address table (IPAM), VM NICs, security groups,
 * VIPs, EIPs, port forwarding, virtual-router offerings and routers.
 *
 * The invariants are constraints, not code:
 * - no duplicate IP on an L3: `ip_addresses` is unique on (l3_network_uuid, ip_number); an
 *   allocation is an INSERT of a candidate that loses cleanly (ON CONFLICT DO NOTHING) to a
 *   concurrent one — no counter row that every allocation must update (no hot row);
 * - MAC unique per L2, device id unique per VM;
 * - one L2 per (zone, interface, VLAN), one per VNI;
 * - one virtual router per L3 it serves: the first VM that needs it inserts the row, the others
 *   find it (`virtual_routers.l3_network_uuid` unique);
 * - one EIP per VIP and per NIC; a VIP serves one kind of service (EIP or port forwarding).
 * Addresses are stored as text (what users see) and as numeric(39,0) (IPv6 fits), for order
 * and uniqueness.
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
  const ipNumber = 'numeric(39, 0)';

  await common(db.schema.createTable('vxlan_pools'))
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid'))
    .addColumn('vni_start', 'integer', (c) => c.notNull())
    .addColumn('vni_end', 'integer', (c) => c.notNull())
    .addCheckConstraint(
      'vxlan_pools_vni_check',
      sql`vni_start >= 1 and vni_end <= 16777214 and vni_start <= vni_end`,
    )
    .execute();
  await sql`create unique index vxlan_pools_name_key on vxlan_pools (zone_uuid, name)`.execute(db);

  await common(db.schema.createTable('l2_networks'))
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid'))
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('no-vlan', 'vlan', 'vxlan')`))
    .addColumn('physical_interface', 'text')
    .addColumn('vlan', 'integer', (c) => c.check(sql`vlan between 1 and 4094`))
    .addColumn('vni', 'integer')
    .addColumn('vxlan_pool_uuid', 'uuid', (c) => c.references('vxlan_pools.uuid'))
    .addCheckConstraint(
      'l2_networks_type_fields_check',
      sql`(type = 'no-vlan' and physical_interface is not null and vlan is null and vni is null)
       or (type = 'vlan' and physical_interface is not null and vlan is not null and vni is null)
       or (type = 'vxlan' and vni is not null and vxlan_pool_uuid is not null and vlan is null)`,
    )
    .execute();
  await sql`create unique index l2_networks_interface_key on l2_networks
    (zone_uuid, physical_interface, coalesce(vlan, 0)) where type <> 'vxlan'`.execute(db);
  await sql`create unique index l2_networks_vni_key on l2_networks (vni) where vni is not null`.execute(db);
  await sql`create index l2_networks_pool_idx on l2_networks (vxlan_pool_uuid) where vxlan_pool_uuid is not null`.execute(
    db,
  );

  await db.schema
    .createTable('l2_network_clusters')
    .addColumn('l2_network_uuid', 'uuid', (c) => c.notNull().references('l2_networks.uuid'))
    .addColumn('cluster_uuid', 'uuid', (c) => c.notNull().references('clusters.uuid'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('l2_network_clusters_pkey', ['l2_network_uuid', 'cluster_uuid'])
    .execute();
  await sql`create index l2_network_clusters_cluster_idx on l2_network_clusters (cluster_uuid)`.execute(db);

  await common(db.schema.createTable('l3_networks'))
    .addColumn('l2_network_uuid', 'uuid', (c) => c.notNull().references('l2_networks.uuid'))
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid'))
    .addColumn('category', 'text', (c) => c.notNull().check(sql`category in ('public', 'private', 'system')`))
    .addColumn('ip_version', 'integer', (c) => c.notNull().defaultTo(4).check(sql`ip_version in (4, 6)`))
    .addColumn('shared', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('dns', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('domain_name', 'text')
    .addColumn('mtu', 'integer', (c) => c.notNull().defaultTo(1500).check(sql`mtu between 68 and 9216`))
    .addColumn('host_routes', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('provider', 'text', (c) => c.check(sql`provider in ('flat', 'virtual-router')`))
    .addColumn('ip_allocation', 'text', (c) =>
      c.notNull().defaultTo('random').check(sql`ip_allocation in ('random', 'sequential')`),
    )
    .addColumn('virtual_router_offering_uuid', 'uuid')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await sql`create index l3_networks_l2_idx on l3_networks (l2_network_uuid)`.execute(db);
  await sql`create unique index l3_networks_name_key on l3_networks (account_uuid, name)`.execute(db);

  await common(db.schema.createTable('ip_ranges'))
    .addColumn('l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('type', 'text', (c) =>
      c.notNull().defaultTo('normal').check(sql`type in ('normal', 'reserved')`),
    )
    .addColumn('ip_version', 'integer', (c) => c.notNull())
    .addColumn('start_ip', 'text', (c) => c.notNull())
    .addColumn('end_ip', 'text', (c) => c.notNull())
    .addColumn('first_number', ipNumber, (c) => c.notNull())
    .addColumn('last_number', ipNumber, (c) => c.notNull())
    .addColumn('gateway', 'text')
    .addColumn('prefix_length', 'integer', (c) => c.notNull())
    .addColumn('netmask', 'text')
    .addCheckConstraint('ip_ranges_order_check', sql`first_number <= last_number`)
    .execute();
  await sql`create index ip_ranges_l3_idx on ip_ranges (l3_network_uuid, first_number)`.execute(db);

  await db.schema
    .createTable('ip_addresses')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('ip_range_uuid', 'uuid', (c) => c.references('ip_ranges.uuid'))
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('ip_number', ipNumber, (c) => c.notNull())
    .addColumn('ip_version', 'integer', (c) => c.notNull())
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('used_for', 'text', (c) =>
      c.notNull().check(sql`used_for in ('vm-nic', 'vip', 'router', 'dhcp')`),
    )
    .addColumn('owner_uuid', 'uuid')
    .addColumn('vm_uuid', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await sql`create unique index ip_addresses_l3_ip_key on ip_addresses (l3_network_uuid, ip_number)`.execute(
    db,
  );
  await sql`create index ip_addresses_owner_idx on ip_addresses (owner_uuid)`.execute(db);
  await sql`create index ip_addresses_range_idx on ip_addresses (ip_range_uuid)`.execute(db);

  await db.schema
    .createTable('vm_nics')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('vm_uuid', 'uuid', (c) => c.notNull().references('vms.uuid'))
    .addColumn('l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('l2_network_uuid', 'uuid', (c) => c.notNull().references('l2_networks.uuid'))
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('ip_address_uuid', 'uuid')
    .addColumn('device_id', 'integer', (c) => c.notNull())
    .addColumn('is_default', 'boolean', (c) => c.notNull().defaultTo(false))
    // the host whose network configuration (bridge, DHCP entry, security-group rules) must carry
    // this NIC: set when its VM is placed on a host, cleared when it leaves (docs/network.md)
    .addColumn('host_uuid', 'uuid', (c) => c.references('hosts.uuid'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await sql`create unique index vm_nics_mac_key on vm_nics (l2_network_uuid, mac)`.execute(db);
  await sql`create unique index vm_nics_device_key on vm_nics (vm_uuid, device_id)`.execute(db);
  await sql`create index vm_nics_l3_idx on vm_nics (l3_network_uuid)`.execute(db);
  await sql`create index vm_nics_host_idx on vm_nics (host_uuid) where host_uuid is not null`.execute(db);

  await common(db.schema.createTable('security_groups'))
    .addColumn('is_default', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await sql`create unique index security_groups_default_key on security_groups (account_uuid) where is_default`.execute(
    db,
  );
  await sql`create unique index security_groups_name_key on security_groups (account_uuid, name)`.execute(db);

  await db.schema
    .createTable('security_group_rules')
    .addColumn('uuid', 'uuid', (c) => c.primaryKey())
    .addColumn('security_group_uuid', 'uuid', (c) =>
      c.notNull().references('security_groups.uuid').onDelete('cascade'),
    )
    .addColumn('account_uuid', 'uuid', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull().check(sql`direction in ('ingress', 'egress')`))
    .addColumn('protocol', 'text', (c) => c.notNull().check(sql`protocol in ('tcp', 'udp', 'icmp', 'all')`))
    .addColumn('port_start', 'integer', (c) => c.check(sql`port_start between 1 and 65535`))
    .addColumn('port_end', 'integer', (c) => c.check(sql`port_end between 1 and 65535`))
    .addColumn('remote_cidr', 'text')
    .addColumn('remote_security_group_uuid', 'uuid', (c) => c.references('security_groups.uuid'))
    .addColumn('ip_version', 'integer', (c) => c.notNull().defaultTo(4).check(sql`ip_version in (4, 6)`))
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addCheckConstraint(
      'security_group_rules_ports_check',
      sql`(port_start is null) = (port_end is null) and (port_start is null or port_start <= port_end)`,
    )
    .addCheckConstraint(
      'security_group_rules_remote_check',
      sql`remote_cidr is null or remote_security_group_uuid is null`,
    )
    .execute();
  // the same rule twice is refused (a re-sent request must not double a rule)
  await sql`create unique index security_group_rules_same_key on security_group_rules (
    security_group_uuid, direction, protocol, ip_version, coalesce(port_start, 0), coalesce(port_end, 0),
    coalesce(remote_cidr, ''), coalesce(remote_security_group_uuid, '00000000-0000-0000-0000-000000000000'::uuid))`.execute(
    db,
  );
  await sql`create index security_group_rules_remote_idx on security_group_rules (remote_security_group_uuid)
    where remote_security_group_uuid is not null`.execute(db);

  await db.schema
    .createTable('vm_nic_security_groups')
    .addColumn('vm_nic_uuid', 'uuid', (c) => c.notNull().references('vm_nics.uuid').onDelete('cascade'))
    .addColumn('security_group_uuid', 'uuid', (c) => c.notNull().references('security_groups.uuid'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('vm_nic_security_groups_pkey', ['vm_nic_uuid', 'security_group_uuid'])
    .execute();
  await sql`create index vm_nic_security_groups_group_idx on vm_nic_security_groups (security_group_uuid)`.execute(
    db,
  );

  await common(db.schema.createTable('vips'))
    .addColumn('l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('ip_address_uuid', 'uuid')
    .addColumn('used_for', 'text', (c) => c.check(sql`used_for in ('eip', 'port-forwarding')`))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await sql`create unique index vips_l3_ip_key on vips (l3_network_uuid, ip)`.execute(db);

  await common(db.schema.createTable('eips'))
    .addColumn('vip_uuid', 'uuid', (c) => c.notNull().references('vips.uuid'))
    .addColumn('vm_nic_uuid', 'uuid', (c) => c.references('vm_nics.uuid'))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await sql`create unique index eips_vip_key on eips (vip_uuid)`.execute(db);
  await sql`create unique index eips_nic_key on eips (vm_nic_uuid) where vm_nic_uuid is not null`.execute(db);

  await common(db.schema.createTable('port_forwarding_rules'))
    .addColumn('vip_uuid', 'uuid', (c) => c.notNull().references('vips.uuid'))
    .addColumn('protocol', 'text', (c) => c.notNull().check(sql`protocol in ('tcp', 'udp')`))
    .addColumn('vip_port_start', 'integer', (c) => c.notNull().check(sql`vip_port_start between 1 and 65535`))
    .addColumn('vip_port_end', 'integer', (c) => c.notNull().check(sql`vip_port_end between 1 and 65535`))
    .addColumn('private_port_start', 'integer', (c) =>
      c.notNull().check(sql`private_port_start between 1 and 65535`),
    )
    .addColumn('private_port_end', 'integer', (c) =>
      c.notNull().check(sql`private_port_end between 1 and 65535`),
    )
    .addColumn('vm_nic_uuid', 'uuid', (c) => c.references('vm_nics.uuid'))
    .addColumn('allowed_cidr', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .addCheckConstraint(
      'port_forwarding_rules_ranges_check',
      sql`vip_port_start <= vip_port_end and private_port_start <= private_port_end
          and vip_port_end - vip_port_start = private_port_end - private_port_start`,
    )
    .execute();
  await sql`create index port_forwarding_rules_vip_idx on port_forwarding_rules (vip_uuid)`.execute(db);
  await sql`create index port_forwarding_rules_nic_idx on port_forwarding_rules (vm_nic_uuid)
    where vm_nic_uuid is not null`.execute(db);

  await common(db.schema.createTable('virtual_router_offerings'))
    .addColumn('zone_uuid', 'uuid', (c) => c.notNull().references('zones.uuid'))
    .addColumn('cpu', 'integer', (c) => c.notNull().check(sql`cpu > 0`))
    .addColumn('memory', 'bigint', (c) => c.notNull().check(sql`memory > 0`))
    .addColumn('image_uuid', 'uuid', (c) => c.notNull().references('images.uuid'))
    .addColumn('management_l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('public_l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('is_default', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Enabled'))
    .execute();
  await sql`create unique index virtual_router_offerings_name_key on virtual_router_offerings (name)`.execute(
    db,
  );
  await sql`create unique index virtual_router_offerings_default_key on virtual_router_offerings (zone_uuid)
    where is_default`.execute(db);
  await db.schema
    .alterTable('l3_networks')
    .addForeignKeyConstraint(
      'l3_networks_vr_offering_fkey',
      ['virtual_router_offering_uuid'],
      'virtual_router_offerings',
      ['uuid'],
    )
    .execute();

  await common(db.schema.createTable('virtual_routers'))
    .addColumn('l3_network_uuid', 'uuid', (c) => c.notNull().references('l3_networks.uuid'))
    .addColumn('offering_uuid', 'uuid', (c) => c.notNull().references('virtual_router_offerings.uuid'))
    .addColumn('vm_uuid', 'uuid', (c) => c.references('vms.uuid'))
    .addColumn('public_ip', 'text')
    .addColumn('guest_ip', 'text')
    .addColumn('management_ip', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('Creating'))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('Connecting'))
    // the job creating it: VMs that find the router being created wait for it
    .addColumn('job_uuid', 'uuid')
    // bumped on every configuration change; the router applies only newer configurations
    .addColumn('config_version', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`create unique index virtual_routers_l3_key on virtual_routers (l3_network_uuid)`.execute(db);

  // versions of full-state configurations sent to hosts and routers: a host applies a
  // configuration only if it is newer than the one it has (concurrent re-syncs cannot regress)
  await sql`create sequence network_config_version`.execute(db);
}
