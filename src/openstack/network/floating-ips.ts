/**
 * Neutron floating IPs = Nimbus EIPs, each on its own VIP: a create makes the VIP on the
 * floating network (a public L3) and the EIP on it, mapped onto `port_id` (a NIC) when given;
 * a delete removes both. `port_id` set/cleared is the EIP's attach/detach. Each step is a
 * Nimbus job, waited for (facade.settle); a create whose EIP step fails removes the VIP it made.
 * The floating IP's id is the EIP's.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, invalidField, missingReference } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { OpenStackDeps } from '../deps.js';
import {
  idCondition,
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
import { refuseProject } from './project.js';
import { routersOfNetworks } from './router-store.js';
import { uplinkOf } from './routers.js';

const Nullable = <T extends import('typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
const FipCreate = Type.Object(
  {
    floatingip: Type.Object(
      {
        floating_network_id: Type.String(),
        floating_ip_address: Type.Optional(Type.String()),
        subnet_id: Type.Optional(Type.String()),
        port_id: Type.Optional(Nullable(Type.String())),
        fixed_ip_address: Type.Optional(Nullable(Type.String())),
        description: Type.Optional(Type.String({ maxLength: 255 })),
        dns_name: Type.Optional(Type.Literal('')),
        dns_domain: Type.Optional(Type.Literal('')),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const FipUpdate = Type.Object(
  {
    floatingip: Type.Object(
      {
        port_id: Type.Optional(Nullable(Type.String())),
        fixed_ip_address: Type.Optional(Nullable(Type.String())),
        description: Type.Optional(Type.String({ maxLength: 255 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

async function floatingIpsOf(deps: OpenStackDeps, rows: Record<string, unknown>[]) {
  if (rows.length === 0) return [];
  const vips = await deps.db
    .selectFrom('vips')
    .select(['uuid', 'l3NetworkUuid'])
    .where(
      'uuid',
      'in',
      rows.map((r) => r.vipUuid as string),
    )
    .execute();
  const nicUuids = rows.map((r) => r.vmNicUuid).filter((x): x is string => !!x);
  const nics = nicUuids.length
    ? await deps.db
        .selectFrom('vmNics')
        .select(['uuid', 'l3NetworkUuid'])
        .where('uuid', 'in', nicUuids)
        .execute()
    : [];
  const routers = await routersOfNetworks(
    deps.db,
    nics.map((n) => n.l3NetworkUuid),
  );
  return rows.map((r) => {
    const nic = nics.find((n) => n.uuid === r.vmNicUuid);
    return {
      id: r.uuid,
      floating_ip_address: r.ip,
      floating_network_id: vips.find((v) => v.uuid === r.vipUuid)?.l3NetworkUuid ?? null,
      port_id: r.vmNicUuid ?? null,
      fixed_ip_address: r.guestIp ?? null,
      router_id: (nic && routers.get(nic.l3NetworkUuid)) ?? null,
      status: r.vmNicUuid ? 'ACTIVE' : 'DOWN',
      description: r.description ?? '',
      tenant_id: r.accountUuid,
      project_id: r.accountUuid,
      dns_domain: '',
      dns_name: '',
      port_details: null,
      qos_policy_id: null,
      port_forwardings: [],
      tags: [],
      revision_number: 0,
      created_at: stamp(r.createdAt),
      updated_at: stamp(r.updatedAt),
    };
  });
}

const FIP_FILTERS = [
  'id',
  'port_id',
  'floating_network_id',
  'project_id',
  'tenant_id',
  'floating_ip_address',
  'fixed_ip_address',
  'description',
  'status',
];

function fipFilters(query: Record<string, unknown>): string[] {
  const q: string[] = [];
  const map: [string, string, boolean][] = [
    ['id', 'uuid', true],
    ['port_id', 'vmNicUuid', true],
    ['floating_network_id', 'vip.l3NetworkUuid', true],
    ['project_id', 'accountUuid', true],
    ['tenant_id', 'accountUuid', true],
    ['floating_ip_address', 'ip', false],
    ['fixed_ip_address', 'guestIp', false],
    ['description', 'description', false],
  ];
  for (const [name, field, id] of map) {
    const v = param(query, name);
    if (v !== undefined) q.push(id ? idCondition(field, v) : `${field}=${v}`);
  }
  const status = param(query, 'status');
  if (status !== undefined) q.push(status.toUpperCase() === 'ACTIVE' ? 'vmNicUuid!=null' : 'vmNicUuid=null');
  return q;
}

/**
 * The NIC a port_id names, checked as the caller sees it (another account's is "no port"). Its
 * network must go out through the floating network (a virtual-router L3 whose offering uplinks
 * there), else 404 ExternalGatewayForFloatingIPNotFound — as Neutron answers, which is what
 * makes `openstack server add floating ip` try the server's next port.
 */
async function nicOf(
  deps: OpenStackDeps,
  caller: Caller,
  portId: string,
  fixedIp: string | null | undefined,
  floatingNetwork: string,
) {
  const nic = await visible(deps, 'vm-nics', portId, caller);
  if (!nic) throw missingReference('port_id', 'port', portId);
  if (fixedIp && fixedIp !== nic.ip)
    throw invalidField('fixed_ip_address', `port ${portId} has ${String(nic.ip)}, not ${fixedIp}`);
  const l3 = await visible(deps, 'l3-networks', nic.l3NetworkUuid as string, caller);
  if (!l3 || (await uplinkOf(deps, l3)) !== floatingNetwork)
    throw new CloudError(
      'NotFound',
      'EXTERNAL_GATEWAY_FOR_FLOATING_IP_NOT_FOUND',
      `External network ${floatingNetwork} is not reachable from subnet of port ${portId}: its network ${String(nic.l3NetworkUuid)} is not routed out through it (a virtual-router network whose router offering uplinks to it)`,
    );
  return nic;
}

export function registerFloatingIps(scope: FastifyInstance, deps: OpenStackDeps): void {
  const eips = serviceOf(deps, 'eips');
  const vips = serviceOf(deps, 'vips');
  const show = async (caller: Caller, id: string) => ({
    floatingip: (await floatingIpsOf(deps, [await mustSee(deps, 'eips', id, caller, 'floatingip')]))[0],
  });

  scope.get('/v2.0/floatingips', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, FIP_FILTERS);
    const page = await listPage(deps, request, 'eips', caller, fipFilters(query));
    return {
      floatingips: pickFields(query, await floatingIpsOf(deps, page.rows)),
      floatingips_links: page.links,
    };
  });

  scope.get('/v2.0/floatingips/:id', async (request) =>
    show(callerOf(request), (request.params as { id: string }).id),
  );

  scope.post('/v2.0/floatingips', { schema: { body: FipCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const f = (request.body as Static<typeof FipCreate>).floatingip;
    refuseProject(caller, f);
    const net = await visible(deps, 'l3-networks', f.floating_network_id, caller);
    if (!net) throw missingReference('floating_network_id', 'network', f.floating_network_id);
    if (net.category !== 'public')
      throw invalidField(
        'floating_network_id',
        `network ${f.floating_network_id as string} is not external (router:external)`,
      );
    if (f.subnet_id) {
      const range = await deps.db
        .selectFrom('ipRanges')
        .select('l3NetworkUuid')
        .where('uuid', '=', f.subnet_id)
        .executeTakeFirst()
        .catch(() => undefined);
      if (range?.l3NetworkUuid !== f.floating_network_id)
        throw invalidField('subnet_id', `is not a subnet of network ${f.floating_network_id as string}`);
    }
    const nic = f.port_id
      ? await nicOf(deps, caller, f.port_id, f.fixed_ip_address, f.floating_network_id)
      : undefined;
    const name = `floatingip-${newId().slice(-12)}`;
    const description = f.description ? { description: f.description } : {};
    const vipJob = await settle(
      deps,
      await vips.create!(caller, {
        name,
        l3NetworkUuid: f.floating_network_id,
        ...(f.floating_ip_address ? { ip: f.floating_ip_address } : {}),
      }),
    );
    const vipUuid = vipJob.resourceUuid as string;
    let eipUuid: string;
    try {
      const job = await settle(
        deps,
        await eips.create!(caller, {
          name,
          vipUuid,
          ...description,
          ...(nic ? { vmNicUuid: nic.uuid } : {}),
        }),
      );
      eipUuid = job.resourceUuid as string;
    } catch (err) {
      // the VIP was made for this floating IP only
      await settle(deps, await vips.remove!(caller, vipUuid)).catch((e: unknown) =>
        request.log.warn({ err: e, vipUuid }, 'could not remove the VIP of a failed floating IP create'),
      );
      throw err;
    }
    return reply.code(201).send(await show(caller, eipUuid));
  });

  scope.put('/v2.0/floatingips/:id', { schema: { body: FipUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const eip = await mustSee(deps, 'eips', id, caller, 'floatingip');
    const f = (request.body as Static<typeof FipUpdate>).floatingip;
    if (f.description !== undefined)
      await settle(deps, await eips.update!(caller, id, { description: f.description }));
    if (f.port_id === null && eip.vmNicUuid) await settle(deps, await eips.actions!.detach!(caller, id, {}));
    else if (f.port_id) {
      const vip = await deps.db
        .selectFrom('vips')
        .select('l3NetworkUuid')
        .where('uuid', '=', eip.vipUuid as string)
        .executeTakeFirstOrThrow();
      const nic = await nicOf(deps, caller, f.port_id, f.fixed_ip_address, vip.l3NetworkUuid);
      if (nic.uuid !== eip.vmNicUuid)
        await settle(deps, await eips.actions!.attach!(caller, id, { vmNicUuid: nic.uuid }));
    }
    return show(caller, id);
  });

  scope.delete('/v2.0/floatingips/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const eip = await mustSee(deps, 'eips', id, caller, 'floatingip');
    await settle(deps, await eips.remove!(caller, id));
    // its VIP, unless something else (a port-forwarding rule made natively) took it meanwhile
    const vip = await visible(deps, 'vips', eip.vipUuid as string, caller);
    if (vip && !vip.usedFor) await settle(deps, await vips.remove!(caller, vip.uuid as string));
    return reply.code(204).send();
  });
}
