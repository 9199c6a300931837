/**
 * Neutron routers. In Nimbus a private L3 with the virtual-router provider is routed by its own
 * virtual router, made by its first VM and uplinked to its offering's public L3 (SNAT, floating
 * IPs). A Neutron router is the name over a group of such L3s and their common uplink: kept in
 * router-store.ts, checked against what Nimbus really does —
 * - the external gateway must be a public network (`router:external`);
 * - an interface is a subnet of a virtual-router network the caller owns, whose router offering
 *   uplinks to the router's external network (else its traffic would leave elsewhere);
 * - `external_fixed_ips` are the public addresses its L3s' virtual routers really hold.
 * Neutron answers router calls at once; so does this (no job: only façade rows change).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField, notFound } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { OpenStackDeps } from '../deps.js';
import { pagingOf, param, pickFields, refuseUnknown, stamp, visible } from './facade.js';
import { refuseProject } from './project.js';
import {
  addInterface,
  deleteRouter,
  insertRouter,
  type RouterRow,
  readRouters,
  removeInterface,
  routerOfNetwork,
  updateRouter,
} from './router-store.js';
import { seeSubnet } from './subnets.js';

const Gateway = Type.Union([
  Type.Null(),
  Type.Object(
    {
      // {} clears the gateway (openstackclient's `router unset --external-gateway`)
      network_id: Type.Optional(Type.String()),
      enable_snat: Type.Optional(Type.Literal(true)),
      external_fixed_ips: Type.Optional(
        Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 0 }),
      ),
    },
    { additionalProperties: false },
  ),
]);
const routerFields = {
  name: Type.Optional(Type.String({ maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 255 })),
  admin_state_up: Type.Optional(Type.Boolean()),
  external_gateway_info: Type.Optional(Gateway),
  distributed: Type.Optional(Type.Literal(false)),
  ha: Type.Optional(Type.Literal(false)),
  availability_zone_hints: Type.Optional(Type.Array(Type.String())),
};
const RouterCreate = Type.Object(
  {
    router: Type.Object(
      { ...routerFields, tenant_id: Type.Optional(Type.String()), project_id: Type.Optional(Type.String()) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const RouterUpdate = Type.Object(
  {
    router: Type.Object(
      { ...routerFields, routes: Type.Optional(Type.Array(Type.Object({}), { maxItems: 0 })) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const InterfaceBody = Type.Object(
  { subnet_id: Type.Optional(Type.String()), port_id: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

async function routersOf(deps: OpenStackDeps, rows: RouterRow[]) {
  const l3s = rows.flatMap((r) => r.interfaces.map((i) => i.l3NetworkUuid));
  const vrs = l3s.length
    ? await deps.db
        .selectFrom('virtualRouters')
        .select(['l3NetworkUuid', 'publicIp'])
        .where('l3NetworkUuid', 'in', l3s)
        .execute()
    : [];
  const publicIps = vrs.map((v) => v.publicIp).filter((x): x is string => !!x);
  const addresses = publicIps.length
    ? await deps.db
        .selectFrom('ipAddresses')
        .select(['ip', 'ipRangeUuid', 'l3NetworkUuid'])
        .where('ip', 'in', publicIps)
        .execute()
    : [];
  return rows.map((r) => {
    const gateway = r.externalL3NetworkUuid;
    const fixed = r.interfaces
      .map((i) => vrs.find((v) => v.l3NetworkUuid === i.l3NetworkUuid)?.publicIp)
      .filter((ip): ip is string => !!ip)
      .map((ip) => ({
        subnet_id: addresses.find((a) => a.ip === ip && a.l3NetworkUuid === gateway)?.ipRangeUuid ?? null,
        ip_address: ip,
      }));
    return {
      id: r.uuid,
      name: r.name,
      description: r.description,
      tenant_id: r.accountUuid,
      project_id: r.accountUuid,
      status: 'ACTIVE',
      admin_state_up: r.adminStateUp,
      external_gateway_info: gateway
        ? { network_id: gateway, enable_snat: true, external_fixed_ips: fixed }
        : null,
      routes: [],
      distributed: false,
      ha: false,
      availability_zone_hints: [],
      availability_zones: ['nova'],
      flavor_id: null,
      tags: [],
      revision_number: 0,
      created_at: stamp(r.createdAt),
      updated_at: stamp(r.updatedAt),
    };
  });
}

async function mustRouter(deps: OpenStackDeps, caller: Caller, id: string): Promise<RouterRow> {
  const [row] = await readRouters(deps.db, caller, { uuid: id, limit: 1 });
  if (!row) throw notFound('router', id);
  return row;
}

/** the public L3 a network's virtual router uplinks to (its offering's), if it is routed */
export async function uplinkOf(
  deps: OpenStackDeps,
  l3: Record<string, unknown>,
): Promise<string | undefined> {
  if (l3.provider !== 'virtual-router') return undefined;
  const offering = await deps.db
    .selectFrom('virtualRouterOfferings')
    .select('publicL3NetworkUuid')
    .where('uuid', '=', l3.virtualRouterOfferingUuid as string)
    .executeTakeFirst();
  return offering?.publicL3NetworkUuid;
}

async function checkGateway(
  deps: OpenStackDeps,
  caller: Caller,
  row: RouterRow | undefined,
  networkId: string,
) {
  const field = 'external_gateway_info.network_id';
  const net = await visible(deps, 'l3-networks', networkId, caller);
  if (!net) throw invalidField(field, `no network ${networkId}`, 'NETWORK_NOT_FOUND');
  if (net.category !== 'public')
    throw invalidField(field, `network ${networkId} is not external (router:external)`);
  for (const i of row?.interfaces ?? []) {
    const l3 = await visible(deps, 'l3-networks', i.l3NetworkUuid, caller);
    const uplink = l3 && (await uplinkOf(deps, l3));
    if (uplink && uplink !== networkId)
      throw invalidField(
        field,
        `network ${i.l3NetworkUuid} on this router goes out through ${uplink} (its router offering's)`,
      );
  }
}

export function registerRouters(scope: FastifyInstance, deps: OpenStackDeps): void {
  const show = async (caller: Caller, id: string) => ({
    router: (await routersOf(deps, [await mustRouter(deps, caller, id)]))[0],
  });

  scope.get('/v2.0/routers', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, ['name', 'id']);
    const paging = pagingOf(query);
    if (paging.marker && !(await readRouters(deps.db, caller, { uuid: paging.marker, limit: 1 })).length)
      throw invalidField('marker', `no item ${paging.marker} in this list`);
    const name = param(query, 'name');
    const id = param(query, 'id');
    const rows = await readRouters(deps.db, caller, {
      ...(name !== undefined ? { name } : {}),
      ...(id !== undefined ? { uuid: id } : {}),
      ...(paging.marker ? (paging.reverse ? { before: paging.marker } : { after: paging.marker }) : {}),
      limit: paging.limit + 1,
    });
    const more = rows.length > paging.limit;
    const page = paging.reverse ? rows.slice(-paging.limit) : rows.slice(0, paging.limit);
    const links = [];
    const base = `${request.protocol}://${request.headers.host ?? 'localhost'}${request.url.split('?')[0]}`;
    const forward = paging.reverse ? !!paging.marker : more;
    const backward = paging.reverse ? more : !!paging.marker;
    if (forward && page.length)
      links.push({ rel: 'next', href: `${base}?limit=${paging.limit}&marker=${page.at(-1)!.uuid}` });
    if (backward && page.length)
      links.push({
        rel: 'previous',
        href: `${base}?limit=${paging.limit}&marker=${page[0]!.uuid}&page_reverse=True`,
      });
    return { routers: pickFields(query, await routersOf(deps, page)), routers_links: links };
  });

  scope.get('/v2.0/routers/:id', async (request) =>
    show(callerOf(request), (request.params as { id: string }).id),
  );

  scope.post('/v2.0/routers', { schema: { body: RouterCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const r = (request.body as Static<typeof RouterCreate>).router;
    refuseProject(caller, r);
    const gateway = r.external_gateway_info?.network_id as string | undefined;
    if (gateway) await checkGateway(deps, caller, undefined, gateway);
    const uuid = newId();
    await insertRouter(deps.db, {
      uuid,
      accountUuid: caller.accountUuid,
      name: r.name ?? '',
      description: r.description ?? '',
      externalL3NetworkUuid: gateway ?? null,
      adminStateUp: r.admin_state_up ?? true,
    });
    return reply.code(201).send(await show(caller, uuid));
  });

  scope.put('/v2.0/routers/:id', { schema: { body: RouterUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const row = await mustRouter(deps, caller, id);
    const r = (request.body as Static<typeof RouterUpdate>).router;
    // undefined: unchanged; null or {}: cleared (`router unset --external-gateway`)
    const given = r.external_gateway_info;
    const gateway = given === undefined ? undefined : (given?.network_id ?? null);
    if (gateway) await checkGateway(deps, caller, row, gateway);
    await updateRouter(deps.db, id, {
      ...(r.name !== undefined ? { name: r.name } : {}),
      ...(r.description !== undefined ? { description: r.description } : {}),
      ...(r.admin_state_up !== undefined ? { adminStateUp: r.admin_state_up } : {}),
      ...(gateway !== undefined ? { externalL3NetworkUuid: gateway } : {}),
    });
    return show(caller, id);
  });

  scope.delete('/v2.0/routers/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const row = await mustRouter(deps, caller, id);
    if (row.interfaces.length > 0)
      throw new CloudError(
        'Conflict',
        'ROUTER_IN_USE',
        `router ${id} still has ${row.interfaces.length} interface(s): remove them first`,
      );
    await deleteRouter(deps.db, id);
    return reply.code(204).send();
  });

  const interfaceOf = async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const row = await mustRouter(deps, caller, id);
    const b = request.body as { subnet_id?: string; port_id?: string };
    if (b.port_id)
      throw invalidField(
        'port_id',
        'Nimbus routers take subnets (subnet_id): a network’s router is its own, not a port',
      );
    if (!b.subnet_id) throw invalidField('subnet_id', 'is required');
    const { row: range, l3 } = await seeSubnet(deps, caller, b.subnet_id).catch(() => {
      throw invalidField('subnet_id', `no subnet ${b.subnet_id}`, 'SUBNET_NOT_FOUND');
    });
    return { caller, id, row, range, l3 };
  };
  const answer = (
    id: string,
    range: Record<string, unknown>,
    l3: Record<string, unknown>,
    portId: string,
  ) => ({
    id,
    subnet_id: range.uuid,
    subnet_ids: [range.uuid],
    network_id: l3.uuid,
    port_id: portId,
    tenant_id: l3.accountUuid,
    project_id: l3.accountUuid,
  });

  scope.put(
    '/v2.0/routers/:id/add_router_interface',
    { schema: { body: InterfaceBody } },
    async (request) => {
      const { caller, id, row, range, l3 } = await interfaceOf(request);
      if (!caller.isAdmin && l3.accountUuid !== caller.accountUuid)
        throw invalidField('subnet_id', `subnet ${String(range.uuid)} is of a network another project owns`);
      const uplink = await uplinkOf(deps, l3);
      if (!uplink)
        throw invalidField(
          'subnet_id',
          `network ${String(l3.uuid)} has provider ${String(l3.provider ?? 'none')}: only virtual-router networks are routed in Nimbus`,
        );
      if (row.externalL3NetworkUuid && uplink !== row.externalL3NetworkUuid)
        throw invalidField(
          'subnet_id',
          `network ${String(l3.uuid)} goes out through ${uplink}, not the router's gateway ${row.externalL3NetworkUuid}`,
        );
      const portId = newId();
      const added = await addInterface(deps.db, {
        uuid: portId,
        routerUuid: id,
        l3Uuid: l3.uuid as string,
        rangeUuid: range.uuid as string,
      });
      if (!added) {
        const other = await routerOfNetwork(deps.db, l3.uuid as string);
        throw invalidField(
          'subnet_id',
          other === id
            ? 'the router already has an interface on this network'
            : `network ${String(l3.uuid)} is on router ${other}`,
        );
      }
      return answer(id, range, l3, portId);
    },
  );

  scope.put(
    '/v2.0/routers/:id/remove_router_interface',
    { schema: { body: InterfaceBody } },
    async (request) => {
      const { id, row, range, l3 } = await interfaceOf(request);
      const portId = row.interfaces.find((i) => i.l3NetworkUuid === l3.uuid)?.uuid;
      if (!portId || !(await removeInterface(deps.db, id, l3.uuid as string)))
        throw new CloudError(
          'NotFound',
          'ROUTER_INTERFACE_NOT_FOUND',
          `router ${id} has no interface on subnet ${String(range.uuid)}`,
        );
      return answer(id, range, l3, portId);
    },
  );
}
