/**
 * Neutron networks = Nimbus L3 networks on an L2 (l2-choice.ts says which). `router:external`
 * is a public L3 (floating IPs and router uplinks come from it); `shared` is the L3's shared
 * flag (admin only, as in Neutron); `admin_state_up` is Enabled/Disabled. A private network is
 * made with the virtual-router provider when its zone has a default router offering (so it can
 * have floating IPs and a router gateway), else flat (DHCP on every host, no router).
 * Synchronous as Neutron's: the create waits for its job (facade.SYNC_WAIT_MS) and answers the
 * network; a job still running then is answered with the network as it is (status BUILD).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { notFound } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { OpenStackDeps } from '../deps.js';
import {
  boolParam,
  idCondition,
  isDone,
  listAll,
  listPage,
  mustSee,
  param,
  pickFields,
  refuseUnknown,
  serviceOf,
  settle,
  stamp,
  visible,
} from './facade.js';
import { chooseL2, providerOf } from './l2-choice.js';
import { assertNetworkUnused, releaseNetworkRouter } from './network-router.js';
import { refuseProject } from './project.js';

const NetworkCreate = Type.Object(
  {
    network: Type.Object(
      {
        name: Type.Optional(Type.String({ maxLength: 255 })),
        description: Type.Optional(Type.String({ maxLength: 255 })),
        admin_state_up: Type.Optional(Type.Boolean()),
        shared: Type.Optional(Type.Boolean()),
        'router:external': Type.Optional(Type.Boolean()),
        mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 9216 })),
        dns_domain: Type.Optional(Type.String({ maxLength: 253 })),
        'provider:network_type': Type.Optional(Type.String()),
        'provider:physical_network': Type.Optional(Type.String()),
        'provider:segmentation_id': Type.Optional(Type.Integer()),
        port_security_enabled: Type.Optional(Type.Literal(true)),
        availability_zone_hints: Type.Optional(Type.Array(Type.String())),
        // auto-allocated topologies are not served
        is_default: Type.Optional(Type.Literal(false)),
        qos_policy_id: Type.Optional(Type.Null()),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const NetworkUpdate = Type.Object(
  {
    network: Type.Object(
      {
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        description: Type.Optional(Type.String({ maxLength: 255 })),
        admin_state_up: Type.Optional(Type.Boolean()),
        mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 9216 })),
        dns_domain: Type.Optional(Type.String({ maxLength: 253 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** the Neutron shape of L3 rows (one query for their subnets and one for their L2s) */
export async function networksOf(
  deps: OpenStackDeps,
  rows: Record<string, unknown>[],
  building: ReadonlySet<string> = new Set(),
): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return [];
  const uuids = rows.map((r) => r.uuid as string);
  // a visible network shows its subnets, also those of a shared network another account owns
  const ranges = await deps.db
    .selectFrom('ipRanges')
    .select(['uuid', 'l3NetworkUuid'])
    .where('l3NetworkUuid', 'in', uuids)
    .where('type', '=', 'normal')
    .orderBy('uuid')
    .execute();
  const l2s = await deps.db
    .selectFrom('l2Networks')
    .selectAll()
    .where('uuid', 'in', [...new Set(rows.map((r) => r.l2NetworkUuid as string))])
    .execute();
  return rows.map((r) => {
    const enabled = r.state === 'Enabled';
    const l2 = l2s.find((x) => x.uuid === r.l2NetworkUuid) as Record<string, unknown> | undefined;
    return {
      id: r.uuid,
      name: r.name,
      description: r.description ?? '',
      tenant_id: r.accountUuid,
      project_id: r.accountUuid,
      status: building.has(r.uuid as string) ? 'BUILD' : enabled ? 'ACTIVE' : 'DOWN',
      admin_state_up: enabled,
      shared: r.shared === true,
      'router:external': r.category === 'public',
      subnets: ranges.filter((x) => x.l3NetworkUuid === r.uuid).map((x) => x.uuid),
      mtu: r.mtu,
      dns_domain: r.domainName ?? '',
      ...providerOf(l2),
      port_security_enabled: true,
      availability_zone_hints: [],
      availability_zones: ['nova'],
      ipv4_address_scope: null,
      ipv6_address_scope: null,
      is_default: false,
      l2_adjacency: true,
      tags: [],
      revision_number: 0,
      created_at: stamp(r.createdAt),
      updated_at: stamp(r.updatedAt),
    };
  });
}

const NETWORK_FILTERS = [
  'name',
  'id',
  'router:external',
  'shared',
  'admin_state_up',
  'status',
  'project_id',
  'tenant_id',
];

/** list filters of networks → query-language conditions */
function networkFilters(query: Record<string, unknown>): string[] {
  const q: string[] = [];
  const name = param(query, 'name');
  if (name !== undefined) q.push(`name=${name}`);
  const id = param(query, 'id');
  if (id !== undefined) q.push(idCondition('uuid', id));
  const external = boolParam(query, 'router:external');
  if (external !== undefined) q.push(external ? 'category=public' : 'category!=public');
  const shared = boolParam(query, 'shared');
  if (shared !== undefined) q.push(`shared=${shared}`);
  const up = boolParam(query, 'admin_state_up');
  if (up !== undefined) q.push(up ? 'state=Enabled' : 'state=Disabled');
  const status = param(query, 'status');
  if (status !== undefined) q.push(status.toUpperCase() === 'ACTIVE' ? 'state=Enabled' : 'state=Disabled');
  for (const key of ['project_id', 'tenant_id']) {
    const p = param(query, key);
    if (p !== undefined) q.push(idCondition('accountUuid', p));
  }
  return q;
}

async function defaultOffering(deps: OpenStackDeps, zoneUuid: string): Promise<string | undefined> {
  const row = await deps.db
    .selectFrom('virtualRouterOfferings')
    .select('uuid')
    .where('zoneUuid', '=', zoneUuid)
    .where('isDefault', '=', true)
    .executeTakeFirst();
  return row?.uuid;
}

async function showNetwork(deps: OpenStackDeps, caller: Caller, uuid: string, building = false) {
  const row = await mustSee(deps, 'l3-networks', uuid, caller, 'network');
  const [shaped] = await networksOf(deps, [row], building ? new Set([uuid]) : new Set());
  return { network: shaped };
}

async function setState(deps: OpenStackDeps, caller: Caller, uuid: string, up: boolean) {
  const svc = serviceOf(deps, 'l3-networks');
  const action = svc.actions?.[up ? 'enable' : 'disable'];
  if (action) await settle(deps, await action(caller, uuid, {}));
}

export function registerNetworks(scope: FastifyInstance, deps: OpenStackDeps): void {
  const l3 = serviceOf(deps, 'l3-networks');

  scope.get('/v2.0/networks', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, NETWORK_FILTERS);
    const page = await listPage(deps, request, 'l3-networks', caller, networkFilters(query));
    return { networks: pickFields(query, await networksOf(deps, page.rows)), networks_links: page.links };
  });

  scope.get('/v2.0/networks/:id', async (request) => {
    const { id } = request.params as { id: string };
    return showNetwork(deps, callerOf(request), id);
  });

  scope.post('/v2.0/networks', { schema: { body: NetworkCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const n = (request.body as Static<typeof NetworkCreate>).network;
    refuseProject(caller, n);
    const l2 = await chooseL2(deps, caller, n);
    const external = n['router:external'] === true;
    const offering = external ? undefined : await defaultOffering(deps, l2.zoneUuid as string);
    const body: Record<string, unknown> = {
      // Nimbus names are required and unique per account; Neutron's may be empty
      name: n.name ? n.name : `network-${newId().slice(-12)}`,
      l2NetworkUuid: l2.uuid,
      category: external ? 'public' : 'private',
      ...(n.description ? { description: n.description } : {}),
      // only the admin may share (Nimbus refuses `shared` from a tenant, even false)
      ...(n.shared ? { shared: true } : {}),
      ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
      ...(n.dns_domain ? { domainName: n.dns_domain.replace(/\.$/, '') } : {}),
      ...(external ? {} : { provider: offering ? 'virtual-router' : 'flat' }),
    };
    const job = await settle(deps, await l3.create!(caller, body));
    const uuid = job.resourceUuid as string;
    if (isDone(job) && n.admin_state_up === false) await setState(deps, caller, uuid, false);
    return reply.code(201).send(await showNetwork(deps, caller, uuid, !isDone(job)));
  });

  scope.put('/v2.0/networks/:id', { schema: { body: NetworkUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const row = await mustSee(deps, 'l3-networks', id, caller, 'network');
    const n = (request.body as Static<typeof NetworkUpdate>).network;
    const change: Record<string, unknown> = {};
    if (n.name !== undefined) change.name = n.name;
    if (n.description !== undefined) change.description = n.description;
    if (n.mtu !== undefined) change.mtu = n.mtu;
    if (n.dns_domain !== undefined) change.domainName = n.dns_domain ? n.dns_domain.replace(/\.$/, '') : null;
    if (Object.keys(change).length > 0) await settle(deps, await l3.update!(caller, id, change));
    if (n.admin_state_up !== undefined && n.admin_state_up !== (row.state === 'Enabled'))
      await setState(deps, caller, id, n.admin_state_up);
    return showNetwork(deps, caller, id);
  });

  scope.delete('/v2.0/networks/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    if (!(await visible(deps, 'l3-networks', id, caller))) throw notFound('network', id);
    await assertNetworkUnused(deps, id, `network ${id}`);
    await releaseNetworkRouter(deps, caller, id);
    // Neutron deletes a network with its (unused) subnets: the L3's ranges go first
    const ranges = await listAll(deps, 'ip-ranges', caller, [`l3NetworkUuid=${id}`, 'type=reserved']);
    const normal = await listAll(deps, 'ip-ranges', caller, [`l3NetworkUuid=${id}`, 'type=normal']);
    const ipRanges = serviceOf(deps, 'ip-ranges');
    for (const r of [...ranges, ...normal])
      await settle(deps, await ipRanges.remove!(caller, r.uuid as string));
    await settle(deps, await l3.remove!(caller, id));
    return reply.code(204).send();
  });
}
