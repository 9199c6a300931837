/**
 * The rows behind Neutron routers (migration 0023-openstack-routers): a router's name, owner
 * and external network, and which L3s it joins. Raw SQL over those two tables only; everything
 * a router does is done by the L3s' virtual routers (routers.ts).
 */
import { sql } from 'kysely';
import type { Db } from '../../db/pool.js';
import type { Caller } from '../../kernel/caller.js';
import { isUuid } from '../../kernel/ids.js';

export interface RouterInterface {
  /** the interface's port id */
  uuid: string;
  l3NetworkUuid: string;
  ipRangeUuid: string | null;
}

export interface RouterRow {
  uuid: string;
  accountUuid: string;
  name: string;
  description: string;
  externalL3NetworkUuid: string | null;
  adminStateUp: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** the L3s it joins, with the range (subnet) each was added by */
  interfaces: RouterInterface[];
}

const visibleTo = (caller: Caller) =>
  caller.isAdmin ? sql`true` : sql`r.account_uuid = ${caller.accountUuid}`;

export async function readRouters(
  db: Db,
  caller: Caller,
  o: { uuid?: string; name?: string; after?: string; before?: string; limit: number },
): Promise<RouterRow[]> {
  if (o.uuid !== undefined && !isUuid(o.uuid)) return [];
  const rows = await sql<Omit<RouterRow, 'interfaces'>>`
    select r.* from openstack_routers r
    where ${visibleTo(caller)}
      and ${o.uuid !== undefined ? sql`r.uuid = ${o.uuid}` : sql`true`}
      and ${o.name !== undefined ? sql`r.name = ${o.name}` : sql`true`}
      and ${o.after !== undefined ? sql`r.uuid > ${o.after}` : sql`true`}
      and ${o.before !== undefined ? sql`r.uuid < ${o.before}` : sql`true`}
    order by r.uuid ${o.before !== undefined ? sql`desc` : sql`asc`}
    limit ${o.limit}`.execute(db);
  if (rows.rows.length === 0) return [];
  const ifaces = await sql<RouterInterface & { routerUuid: string }>`
    select uuid, router_uuid, l3_network_uuid, ip_range_uuid from openstack_router_interfaces
    where router_uuid in (${sql.join(rows.rows.map((r) => r.uuid))})
    order by created_at`.execute(db);
  const out = rows.rows.map((r) => ({
    ...r,
    interfaces: ifaces.rows
      .filter((i) => i.routerUuid === r.uuid)
      .map((i) => ({ uuid: i.uuid, l3NetworkUuid: i.l3NetworkUuid, ipRangeUuid: i.ipRangeUuid })),
  }));
  return o.before !== undefined ? out.reverse() : out;
}

export async function insertRouter(
  db: Db,
  r: {
    uuid: string;
    accountUuid: string;
    name: string;
    description: string;
    externalL3NetworkUuid: string | null;
    adminStateUp: boolean;
  },
): Promise<void> {
  await sql`
    insert into openstack_routers (uuid, account_uuid, name, description, external_l3_network_uuid, admin_state_up)
    values (${r.uuid}, ${r.accountUuid}, ${r.name}, ${r.description}, ${r.externalL3NetworkUuid}, ${r.adminStateUp})`.execute(
    db,
  );
}

export async function updateRouter(
  db: Db,
  uuid: string,
  change: {
    name?: string;
    description?: string;
    externalL3NetworkUuid?: string | null;
    adminStateUp?: boolean;
  },
): Promise<void> {
  await sql`
    update openstack_routers set
      name = coalesce(${change.name ?? null}, name),
      description = coalesce(${change.description ?? null}, description),
      external_l3_network_uuid = ${
        change.externalL3NetworkUuid === undefined
          ? sql`external_l3_network_uuid`
          : change.externalL3NetworkUuid
      },
      admin_state_up = coalesce(${change.adminStateUp ?? null}, admin_state_up),
      updated_at = now()
    where uuid = ${uuid}`.execute(db);
}

export async function deleteRouter(db: Db, uuid: string): Promise<void> {
  await sql`delete from openstack_routers where uuid = ${uuid}`.execute(db);
}

/**
 * Joins an L3 to a router. An L3 is on one router at most (the primary key): false when it
 * already is on one (then `routerOfNetwork` says which).
 */
export async function addInterface(
  db: Db,
  i: { uuid: string; routerUuid: string; l3Uuid: string; rangeUuid: string | null },
): Promise<boolean> {
  const r = await sql`
    insert into openstack_router_interfaces (uuid, l3_network_uuid, router_uuid, ip_range_uuid)
    values (${i.uuid}, ${i.l3Uuid}, ${i.routerUuid}, ${i.rangeUuid})
    on conflict (l3_network_uuid) do nothing`.execute(db);
  return Number(r.numAffectedRows ?? 0) === 1;
}

export async function removeInterface(db: Db, routerUuid: string, l3Uuid: string): Promise<boolean> {
  const r = await sql`
    delete from openstack_router_interfaces where router_uuid = ${routerUuid} and l3_network_uuid = ${l3Uuid}`.execute(
    db,
  );
  return Number(r.numAffectedRows ?? 0) === 1;
}

export async function routerOfNetwork(db: Db, l3Uuid: string): Promise<string | undefined> {
  const r = await sql<{ routerUuid: string }>`
    select router_uuid from openstack_router_interfaces where l3_network_uuid = ${l3Uuid}`.execute(db);
  return r.rows[0]?.routerUuid;
}

/** the routers of these L3s (a floating IP's router is its port's network's) */
export async function routersOfNetworks(db: Db, l3Uuids: string[]): Promise<Map<string, string>> {
  if (l3Uuids.length === 0) return new Map();
  const r = await sql<{ routerUuid: string; l3NetworkUuid: string }>`
    select router_uuid, l3_network_uuid from openstack_router_interfaces
    where l3_network_uuid in (${sql.join(l3Uuids)})`.execute(db);
  return new Map(r.rows.map((x) => [x.l3NetworkUuid, x.routerUuid]));
}

/** the router interfaces (as ports) the caller sees: by port id, or by router */
export async function readInterfaces(
  db: Db,
  caller: Caller,
  o: { uuid?: string; routerUuid?: string },
): Promise<(RouterInterface & { routerUuid: string; accountUuid: string })[]> {
  if ((o.uuid !== undefined && !isUuid(o.uuid)) || (o.routerUuid !== undefined && !isUuid(o.routerUuid)))
    return [];
  const r = await sql<RouterInterface & { routerUuid: string; accountUuid: string }>`
    select i.uuid, i.router_uuid, i.l3_network_uuid, i.ip_range_uuid, r.account_uuid
    from openstack_router_interfaces i join openstack_routers r on r.uuid = i.router_uuid
    where ${visibleTo(caller)}
      and ${o.uuid !== undefined ? sql`i.uuid = ${o.uuid}` : sql`true`}
      and ${o.routerUuid !== undefined ? sql`i.router_uuid = ${o.routerUuid}` : sql`true`}
    order by i.uuid`.execute(db);
  return r.rows;
}
