/**
 * Neutron ports = Nimbus VM NICs. A NIC exists only on a VM (Nimbus has no unbound port), so a
 * port is created with `device_id` (the server: a NIC attach) and deleted by detaching it; its
 * `fixed_ips` are the NIC's one address and the range (subnet) holding it; `security_groups`
 * are the NIC's groups (a change adds/removes it through the groups' own operations).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { invalidField, missingReference, notFound } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import {
  idCondition,
  listPage,
  param,
  pickFields,
  refuseUnknown,
  serviceOf,
  settle,
  stamp,
  visible,
} from './facade.js';
import { refuseProject } from './project.js';
import { routerPort, routerPortFixed, routerPortsAskedFor, routerPortsOf } from './router-ports.js';

const FixedIp = Type.Object(
  { subnet_id: Type.Optional(Type.String()), ip_address: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const portFields = {
  name: Type.Optional(Type.String({ maxLength: 255 })),
  description: Type.Optional(Type.String({ maxLength: 255 })),
  admin_state_up: Type.Optional(Type.Literal(true)),
  security_groups: Type.Optional(Type.Array(Type.String(), { maxItems: 50 })),
  fixed_ips: Type.Optional(Type.Array(FixedIp, { maxItems: 1 })),
};
const PortCreate = Type.Object(
  {
    port: Type.Object(
      {
        ...portFields,
        network_id: Type.String(),
        device_id: Type.Optional(Type.String()),
        device_owner: Type.Optional(Type.String()),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const PortUpdate = Type.Object(
  { port: Type.Object(portFields, { additionalProperties: false }) },
  { additionalProperties: false },
);

/** the Neutron shape of NIC rows (one query for the ranges holding their addresses) */
export async function portsOf(deps: OpenStackDeps, nics: Record<string, unknown>[]) {
  if (nics.length === 0) return [];
  const addresses = await deps.db
    .selectFrom('ipAddresses')
    .select(['ownerUuid', 'ipRangeUuid'])
    .where(
      'ownerUuid',
      'in',
      nics.map((n) => n.uuid as string),
    )
    .execute();
  return nics.map((n) => ({
    id: n.uuid,
    name: '',
    description: '',
    network_id: n.l3NetworkUuid,
    tenant_id: n.accountUuid,
    project_id: n.accountUuid,
    mac_address: n.mac,
    fixed_ips: n.ip
      ? [{ subnet_id: addresses.find((a) => a.ownerUuid === n.uuid)?.ipRangeUuid ?? null, ip_address: n.ip }]
      : [],
    device_id: n.vmUuid,
    device_owner: 'compute:nova',
    // a NIC is on a host's network while its VM runs there (docs/network.md "The NICs follow the VM")
    status: n.hostUuid ? 'ACTIVE' : 'DOWN',
    admin_state_up: true,
    security_groups: (n.securityGroupUuids as string[] | undefined) ?? [],
    port_security_enabled: true,
    allowed_address_pairs: [],
    extra_dhcp_opts: [],
    'binding:host_id': n.hostUuid ?? '',
    'binding:vnic_type': 'normal',
    'binding:vif_type': n.hostUuid ? 'bridge' : 'unbound',
    tags: [],
    revision_number: 0,
    created_at: stamp(n.createdAt),
    updated_at: stamp(n.updatedAt),
  }));
}

const PORT_FILTERS = [
  'id',
  'device_id',
  'network_id',
  'project_id',
  'tenant_id',
  'mac_address',
  'device_owner',
  'name',
  'fixed_ips',
];

function portFilters(query: Record<string, unknown>): string[] {
  const q: string[] = [];
  const ids: [string, string][] = [
    ['id', 'uuid'],
    ['device_id', 'vmUuid'],
    ['network_id', 'l3NetworkUuid'],
    ['project_id', 'accountUuid'],
    ['tenant_id', 'accountUuid'],
  ];
  for (const [name, field] of ids) {
    const v = param(query, name);
    if (v !== undefined) q.push(idCondition(field, v));
  }
  const mac = param(query, 'mac_address');
  if (mac !== undefined) q.push(`mac=${mac.toLowerCase()}`);
  const owner = param(query, 'device_owner');
  // every NIC the tenant sees is a server's
  if (owner !== undefined && !owner.startsWith('compute:')) q.push('uuid=null');
  const name = param(query, 'name');
  if (name) q.push('uuid=null');
  const fixed = query.fixed_ips;
  for (const f of Array.isArray(fixed) ? fixed : fixed === undefined ? [] : [fixed]) {
    const m = /^ip_address=(.+)$/.exec(String(f));
    if (m) q.push(`ip=${m[1]}`);
  }
  return q;
}

async function show(deps: OpenStackDeps, caller: Caller, uuid: string) {
  const nic = await visible(deps, 'vm-nics', uuid, caller);
  if (nic) return { port: (await portsOf(deps, [nic]))[0] };
  const iface = await routerPort(deps, caller, uuid);
  if (!iface) throw notFound('port', uuid);
  return { port: iface };
}

/** a NIC to change; a router interface is changed through its router */
async function nicToChange(deps: OpenStackDeps, caller: Caller, uuid: string) {
  const nic = await visible(deps, 'vm-nics', uuid, caller);
  if (nic) return nic;
  if (await routerPort(deps, caller, uuid)) throw routerPortFixed(uuid);
  throw notFound('port', uuid);
}

/** moves a NIC into exactly `wanted` groups, through the groups' add-nics/remove-nics */
async function setGroups(
  deps: OpenStackDeps,
  caller: Caller,
  nic: Record<string, unknown>,
  wanted: string[],
) {
  const groups = serviceOf(deps, 'security-groups');
  const problems: { field: string; problem: string }[] = [];
  for (const g of wanted)
    if (!(await visible(deps, 'security-groups', g, caller)))
      problems.push({ field: 'security_groups', problem: `no security group ${g}` });
  if (problems.length > 0) throw invalidField(problems[0]!.field, problems.map((p) => p.problem).join('; '));
  const current = (nic.securityGroupUuids as string[] | undefined) ?? [];
  const body = { vmNicUuids: [nic.uuid as string] };
  for (const g of wanted.filter((x) => !current.includes(x)))
    await settle(deps, await groups.actions!['add-nics']!(caller, g, body));
  for (const g of current.filter((x) => !wanted.includes(x)))
    await settle(deps, await groups.actions!['remove-nics']!(caller, g, body));
}

export function registerPorts(scope: FastifyInstance, deps: OpenStackDeps): void {
  const nics = serviceOf(deps, 'vm-nics');

  scope.get('/v2.0/ports', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    refuseUnknown(query, PORT_FILTERS);
    const routerIfaces = await routerPortsAskedFor(
      deps,
      caller,
      param(query, 'device_owner'),
      param(query, 'device_id'),
    );
    if (routerIfaces) {
      // a router's few interfaces: one page, filtered here
      const network = param(query, 'network_id');
      const id = param(query, 'id');
      const wanted = routerIfaces.filter(
        (i) => (!network || i.l3NetworkUuid === network) && (!id || i.uuid === id),
      );
      return { ports: pickFields(query, await routerPortsOf(deps, wanted)), ports_links: [] };
    }
    const page = await listPage(deps, request, 'vm-nics', caller, portFilters(query));
    return { ports: pickFields(query, await portsOf(deps, page.rows)), ports_links: page.links };
  });

  scope.get('/v2.0/ports/:id', async (request) =>
    show(deps, callerOf(request), (request.params as { id: string }).id),
  );

  scope.post('/v2.0/ports', { schema: { body: PortCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const p = (request.body as Static<typeof PortCreate>).port;
    refuseProject(caller, p);
    if (!p.device_id)
      throw invalidField(
        'device_id',
        'Nimbus has no unbound ports: a port is a NIC of a server, so give the server (device_id), or let the server create make its NICs',
      );
    if (!(await visible(deps, 'l3-networks', p.network_id, caller)))
      throw missingReference('network_id', 'network', p.network_id);
    const ip = (p.fixed_ips as { ip_address?: string }[] | undefined)?.[0]?.ip_address;
    const job = await settle(
      deps,
      await nics.create!(caller, {
        vmUuid: p.device_id,
        l3NetworkUuid: p.network_id,
        ...(ip ? { ip } : {}),
        ...(p.security_groups ? { securityGroupUuids: p.security_groups } : {}),
      }),
    );
    return reply.code(201).send(await show(deps, caller, job.resourceUuid as string));
  });

  scope.put('/v2.0/ports/:id', { schema: { body: PortUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const nic = await nicToChange(deps, caller, id);
    const p = (request.body as Static<typeof PortUpdate>).port;
    if (p.name) throw invalidField('name', 'a Nimbus NIC has no name');
    const ip = (p.fixed_ips as { ip_address?: string }[] | undefined)?.[0]?.ip_address;
    if (p.fixed_ips && ip !== nic.ip)
      await settle(deps, await nics.actions!['change-ip']!(caller, id, ip ? { ip } : {}));
    if (p.security_groups) await setGroups(deps, caller, nic, p.security_groups);
    return show(deps, caller, id);
  });

  scope.delete('/v2.0/ports/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await nicToChange(deps, caller, id);
    await settle(deps, await nics.remove!(caller, id));
    return reply.code(204).send();
  });
}
