/**
 * Neutron subnets = Nimbus IP ranges (type normal) of the network's L3: `cidr` (gateway = the
 * first address unless `gateway_ip` says otherwise) or one allocation pool (`start`–`end`
 * within `cidr`). DNS servers and host routes are the L3's in Nimbus (every range of a network
 * shares them), so a subnet's `dns_nameservers`/`host_routes` set and show the network's.
 * DHCP is served by the network's provider: `enable_dhcp` is true on a network with a provider.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { conflict, invalidField, notFound } from '../../kernel/errors.js';
import { isUuid, newId } from '../../kernel/ids.js';
import { formatIp, networkOf, parseCidr, parseIp } from '../../kernel/ip.js';
import type { OpenStackDeps } from '../deps.js';
import { mustSee, pickFields, refuseUnknown, serviceOf, settle, stamp } from './facade.js';
import { assertNetworkUnused, releaseNetworkRouter } from './network-router.js';
import { refuseProject } from './project.js';
import { routerOfNetwork } from './router-store.js';
import { subnetPage } from './subnet-list.js';

const Pool = Type.Object({ start: Type.String(), end: Type.String() }, { additionalProperties: false });
const Route = Type.Object(
  { destination: Type.String(), nexthop: Type.String() },
  { additionalProperties: false },
);
const common = {
  name: Type.Optional(Type.String({ maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 255 })),
  dns_nameservers: Type.Optional(Type.Array(Type.String(), { maxItems: 8 })),
  host_routes: Type.Optional(Type.Array(Route, { maxItems: 32 })),
  enable_dhcp: Type.Optional(Type.Boolean()),
};
const SubnetCreate = Type.Object(
  {
    subnet: Type.Object(
      {
        ...common,
        network_id: Type.String(),
        ip_version: Type.Union([Type.Literal(4), Type.Literal(6)]),
        cidr: Type.String(),
        gateway_ip: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        allocation_pools: Type.Optional(Type.Array(Pool, { maxItems: 1 })),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const SubnetUpdate = Type.Object(
  { subnet: Type.Object(common, { additionalProperties: false }) },
  { additionalProperties: false },
);

function cidrOf(r: Record<string, unknown>): string {
  const ip = parseIp(r.startIp as string)!;
  const prefix = r.prefixLength as number;
  return `${formatIp(networkOf(ip.value, prefix, ip.version), ip.version)}/${prefix}`;
}

/** Neutron's pools leave the gateway out; a Nimbus range may hold it (never handing it out) */
function poolsOf(r: Record<string, unknown>): { start: string; end: string }[] {
  const start = parseIp(r.startIp as string)!;
  const end = parseIp(r.endIp as string)!.value;
  const gw = r.gateway ? parseIp(r.gateway as string)?.value : undefined;
  const v = start.version;
  const spans: [bigint, bigint][] =
    gw === undefined || gw < start.value || gw > end
      ? [[start.value, end]]
      : [
          [start.value, gw - 1n],
          [gw + 1n, end],
        ];
  return spans.filter(([a, b]) => a <= b).map(([a, b]) => ({ start: formatIp(a, v), end: formatIp(b, v) }));
}

export function subnetOf(r: Record<string, unknown>, l3: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.uuid,
    name: r.name,
    description: r.description ?? '',
    network_id: r.l3NetworkUuid,
    tenant_id: r.accountUuid,
    project_id: r.accountUuid,
    ip_version: r.ipVersion,
    cidr: cidrOf(r),
    gateway_ip: r.gateway ?? null,
    allocation_pools: poolsOf(r),
    enable_dhcp: l3.provider !== null && l3.provider !== undefined,
    dns_nameservers: (l3.dns as string[] | undefined) ?? [],
    host_routes: (l3.hostRoutes as unknown[] | undefined) ?? [],
    ipv6_ra_mode: null,
    ipv6_address_mode: null,
    subnetpool_id: null,
    service_types: [],
    tags: [],
    revision_number: 0,
    created_at: stamp(r.createdAt),
    updated_at: stamp(r.updatedAt),
  };
}

/** a subnet is seen with its network: a shared network's subnets are seen by every account */
export async function seeSubnet(deps: OpenStackDeps, caller: Caller, uuid: string) {
  const range = isUuid(uuid)
    ? await deps.db
        .selectFrom('ipRanges')
        .select(['uuid', 'l3NetworkUuid', 'type'])
        .where('uuid', '=', uuid)
        .executeTakeFirst()
    : undefined;
  if (range?.type !== 'normal') throw notFound('subnet', uuid);
  const l3 = await mustSee(deps, 'l3-networks', range.l3NetworkUuid, caller, 'subnet').catch(() => {
    throw notFound('subnet', uuid);
  });
  const row = await deps.db
    .selectFrom('ipRanges')
    .selectAll()
    .where('uuid', '=', uuid)
    .executeTakeFirstOrThrow();
  return { row: row as unknown as Record<string, unknown>, l3 };
}

const SUBNET_FILTERS = ['name', 'id', 'network_id', 'ip_version', 'gateway_ip', 'project_id', 'tenant_id'];

/** the ip-range create body of a Neutron subnet; bad fields are named in Neutron's words */
function rangeBody(
  s: Static<typeof SubnetCreate>['subnet'],
  l3: Record<string, unknown>,
): Record<string, unknown> {
  const cidr = parseCidr(s.cidr);
  if (!cidr) throw invalidField('cidr', `'${s.cidr}' is not a CIDR such as 10.0.0.0/24`);
  if (cidr.version !== s.ip_version)
    throw invalidField('cidr', `is IPv${cidr.version}, ip_version says ${s.ip_version}`);
  if (cidr.version !== l3.ipVersion)
    throw invalidField(
      'ip_version',
      `the network ${l3.uuid as string} is IPv${String(l3.ipVersion)}: a Nimbus network has one IP version`,
    );
  if (s.enable_dhcp === false && l3.provider)
    throw invalidField(
      'enable_dhcp',
      `the network's ${String(l3.provider)} provider serves DHCP on all its subnets`,
    );
  const name = s.name ? s.name : `subnet-${newId().slice(-12)}`;
  const base = { name, l3NetworkUuid: l3.uuid, ...(s.description ? { description: s.description } : {}) };
  const pool = (s.allocation_pools as { start: string; end: string }[] | undefined)?.[0];
  if (s.gateway_ip === null && !pool)
    throw invalidField(
      'gateway_ip',
      'a subnet without a gateway needs its allocation_pools (Nimbus gives a whole CIDR its first address as gateway)',
    );
  if (!pool) return { ...base, cidr: s.cidr, ...(s.gateway_ip ? { gateway: s.gateway_ip } : {}) };
  const first = formatIp(networkOf(cidr.network, cidr.prefix, cidr.version) + 1n, cidr.version);
  return {
    ...base,
    startIp: pool.start,
    endIp: pool.end,
    prefixLength: cidr.prefix,
    ...(s.gateway_ip === null ? {} : { gateway: s.gateway_ip ?? first }),
  };
}

async function networkChange(
  deps: OpenStackDeps,
  caller: Caller,
  l3Uuid: string,
  s: Static<typeof SubnetUpdate>['subnet'],
) {
  const change: Record<string, unknown> = {};
  if (s.dns_nameservers !== undefined) change.dns = s.dns_nameservers;
  if (s.host_routes !== undefined) change.hostRoutes = s.host_routes;
  if (Object.keys(change).length > 0)
    await settle(deps, await serviceOf(deps, 'l3-networks').update!(caller, l3Uuid, change));
}

async function show(deps: OpenStackDeps, caller: Caller, uuid: string) {
  const { row, l3 } = await seeSubnet(deps, caller, uuid);
  return { subnet: subnetOf(row, l3) };
}

export function registerSubnets(scope: FastifyInstance, deps: OpenStackDeps): void {
  const ranges = serviceOf(deps, 'ip-ranges');

  scope.get('/v2.0/subnets', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, SUBNET_FILTERS);
    const page = await subnetPage(deps, request, caller, query);
    const l3s = new Map<string, Record<string, unknown>>();
    for (const r of page.rows) {
      const id = r.l3NetworkUuid as string;
      if (!l3s.has(id)) l3s.set(id, await mustSee(deps, 'l3-networks', id, caller, 'network'));
    }
    return {
      subnets: pickFields(
        query,
        page.rows.map((r) => subnetOf(r, l3s.get(r.l3NetworkUuid as string)!)),
      ),
      subnets_links: page.links,
    };
  });

  scope.get('/v2.0/subnets/:id', async (request) =>
    show(deps, callerOf(request), (request.params as { id: string }).id),
  );

  scope.post('/v2.0/subnets', { schema: { body: SubnetCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const s = (request.body as Static<typeof SubnetCreate>).subnet;
    refuseProject(caller, s);
    const l3 = await mustSee(deps, 'l3-networks', s.network_id, caller, 'network').catch(() => {
      throw invalidField('network_id', `no network ${s.network_id as string}`, 'NETWORK_NOT_FOUND');
    });
    const job = await settle(deps, await ranges.create!(caller, rangeBody(s, l3)));
    await networkChange(deps, caller, l3.uuid as string, s);
    const shown = await show(deps, caller, job.resourceUuid as string);
    return reply.code(201).send(shown);
  });

  scope.put('/v2.0/subnets/:id', { schema: { body: SubnetUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { row, l3 } = await seeSubnet(deps, caller, id);
    const s = (request.body as Static<typeof SubnetUpdate>).subnet;
    if (s.enable_dhcp !== undefined && s.enable_dhcp !== Boolean(l3.provider))
      throw invalidField(
        'enable_dhcp',
        `DHCP follows the network's provider (${String(l3.provider ?? 'none')})`,
      );
    const change: Record<string, unknown> = {};
    if (s.name) change.name = s.name;
    if (s.description !== undefined) change.description = s.description;
    if (Object.keys(change).length > 0) await settle(deps, await ranges.update!(caller, id, change));
    await networkChange(deps, caller, row.l3NetworkUuid as string, s);
    return show(deps, caller, id);
  });

  scope.delete('/v2.0/subnets/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { row } = await seeSubnet(deps, caller, id);
    // the network's virtual router holds the gateway: let it go when nothing else is on the network
    const network = row.l3NetworkUuid as string;
    const onRouter = await routerOfNetwork(deps.db, network);
    if (onRouter)
      throw conflict(
        'SUBNET_IN_USE',
        `subnet ${id} is an interface of router ${onRouter}: remove the router interface first`,
      );
    const l3 = await mustSee(deps, 'l3-networks', network, caller, 'network');
    if (l3.accountUuid === caller.accountUuid || caller.isAdmin) {
      const unused = await assertNetworkUnused(deps, network, `the network of subnet ${id}`).then(
        () => true,
        () => false,
      );
      if (unused) await releaseNetworkRouter(deps, caller, network);
    }
    await settle(deps, await ranges.remove!(caller, id));
    return reply.code(204).send();
  });
}
