/**
 * Neutron security groups and rules = Nimbus's (whose model is Neutron's: allow rules, default
 * deny, remote CIDR or remote group, a per-account `default` group). Protocols by name or
 * number: tcp (6), udp (17), icmp (1; with IPv6 also ipv6-icmp/icmpv6, 58); none = every
 * protocol. Nimbus rules have no ICMP type/code, so `port_range_*` with ICMP is refused.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { callerOf } from '../../api/auth.js';
import type { Caller } from '../../kernel/caller.js';
import { invalid, missingReference } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import {
  idCondition,
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
import { refuseProject } from './project.js';

const GroupCreate = Type.Object(
  {
    security_group: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 255 }),
        description: Type.Optional(Type.String({ maxLength: 255 })),
        stateful: Type.Optional(Type.Literal(true)),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const GroupUpdate = Type.Object(
  {
    security_group: Type.Object(
      {
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        description: Type.Optional(Type.String({ maxLength: 255 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const Nullable = <T extends import('typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
const RuleCreate = Type.Object(
  {
    security_group_rule: Type.Object(
      {
        security_group_id: Type.String(),
        direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
        ethertype: Type.Optional(Type.Union([Type.Literal('IPv4'), Type.Literal('IPv6')])),
        protocol: Type.Optional(Nullable(Type.String())),
        port_range_min: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 65535 }))),
        port_range_max: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 65535 }))),
        remote_ip_prefix: Type.Optional(Nullable(Type.String())),
        remote_group_id: Type.Optional(Nullable(Type.String())),
        remote_address_group_id: Type.Optional(Type.Null()),
        description: Type.Optional(Type.String({ maxLength: 255 })),
        tenant_id: Type.Optional(Type.String()),
        project_id: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export function ruleOf(r: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.uuid,
    security_group_id: r.securityGroupUuid,
    direction: r.direction,
    ethertype: r.ipVersion === 6 ? 'IPv6' : 'IPv4',
    protocol:
      r.protocol === 'all' ? null : r.protocol === 'icmp' && r.ipVersion === 6 ? 'ipv6-icmp' : r.protocol,
    port_range_min: r.portStart ?? null,
    port_range_max: r.portEnd ?? null,
    remote_ip_prefix: r.remoteCidr ?? null,
    remote_group_id: r.remoteSecurityGroupUuid ?? null,
    remote_address_group_id: null,
    description: r.description ?? '',
    tenant_id: r.accountUuid,
    project_id: r.accountUuid,
    tags: [],
    revision_number: 0,
    created_at: stamp(r.createdAt),
    updated_at: stamp(r.updatedAt),
  };
}

async function groupsOf(deps: OpenStackDeps, caller: Caller, rows: Record<string, unknown>[]) {
  if (rows.length === 0) return [];
  const rules = await listAll(deps, 'security-group-rules', caller, [
    `securityGroupUuid?=${rows.map((r) => r.uuid as string).join(',')}`,
  ]);
  return rows.map((g) => ({
    id: g.uuid,
    name: g.name,
    description: g.description ?? '',
    tenant_id: g.accountUuid,
    project_id: g.accountUuid,
    stateful: true,
    security_group_rules: rules.filter((r) => r.securityGroupUuid === g.uuid).map(ruleOf),
    tags: [],
    revision_number: 0,
    created_at: stamp(g.createdAt),
    updated_at: stamp(g.updatedAt),
  }));
}

const PROTOCOLS: Record<string, { protocol: string; ipVersion?: 4 | 6 }> = {
  tcp: { protocol: 'tcp' },
  '6': { protocol: 'tcp' },
  udp: { protocol: 'udp' },
  '17': { protocol: 'udp' },
  icmp: { protocol: 'icmp' },
  '1': { protocol: 'icmp' },
  'ipv6-icmp': { protocol: 'icmp', ipVersion: 6 },
  icmpv6: { protocol: 'icmp', ipVersion: 6 },
  '58': { protocol: 'icmp', ipVersion: 6 },
  any: { protocol: 'all' },
};

/** the Nimbus rule body of a Neutron rule; every bad field named at once */
function ruleBody(r: Static<typeof RuleCreate>['security_group_rule']): Record<string, unknown> {
  const problems: { field: string; problem: string }[] = [];
  const p =
    r.protocol === null || r.protocol === undefined
      ? { protocol: 'all' }
      : PROTOCOLS[String(r.protocol).toLowerCase()];
  if (!p)
    problems.push({
      field: 'protocol',
      problem: `'${String(r.protocol)}' is not one Nimbus filters (tcp, udp, icmp, ipv6-icmp or none for all)`,
    });
  const version = r.ethertype === 'IPv6' ? 6 : 4;
  if (p?.ipVersion && p.ipVersion !== version)
    problems.push({ field: 'protocol', problem: `${String(r.protocol)} needs ethertype IPv6` });
  const min = r.port_range_min ?? undefined;
  const max = r.port_range_max ?? undefined;
  if ((min !== undefined || max !== undefined) && p && p.protocol !== 'tcp' && p.protocol !== 'udp')
    problems.push({
      field: 'port_range_min',
      problem: `ports apply to tcp and udp only (Nimbus rules have no ICMP type and code)`,
    });
  if (min === undefined && max !== undefined)
    problems.push({ field: 'port_range_min', problem: 'is needed with port_range_max' });
  if (min !== undefined && max !== undefined && max < min)
    problems.push({ field: 'port_range_max', problem: 'is below port_range_min' });
  if (min === 0) problems.push({ field: 'port_range_min', problem: 'ports start at 1' });
  if (r.remote_ip_prefix && r.remote_group_id)
    problems.push({
      field: 'remote_group_id',
      problem: 'give remote_ip_prefix or remote_group_id, not both',
    });
  if (problems.length > 0) throw invalid(problems);
  return {
    securityGroupUuid: r.security_group_id,
    direction: r.direction,
    protocol: p!.protocol,
    ipVersion: version,
    ...(min !== undefined ? { portStart: min } : {}),
    ...(max !== undefined ? { portEnd: max } : {}),
    ...(r.remote_ip_prefix ? { remoteCidr: r.remote_ip_prefix } : {}),
    ...(r.remote_group_id ? { remoteSecurityGroupUuid: r.remote_group_id } : {}),
    ...(r.description ? { description: r.description } : {}),
  };
}

function filters(
  query: Record<string, unknown>,
  map: [string, string, 'id' | 'text'][],
  extra: string[] = [],
): string[] {
  refuseUnknown(query, [...map.map(([name]) => name), ...extra]);
  const q: string[] = [];
  for (const [name, field, type] of map) {
    const v = param(query, name);
    if (v !== undefined) q.push(type === 'id' ? idCondition(field, v) : `${field}=${v}`);
  }
  return q;
}

export function registerSecurityGroups(scope: FastifyInstance, deps: OpenStackDeps): void {
  const groups = serviceOf(deps, 'security-groups');
  const rules = serviceOf(deps, 'security-group-rules');
  const showGroup = async (caller: Caller, id: string) => {
    const [g] = await groupsOf(deps, caller, [
      await mustSee(deps, 'security-groups', id, caller, 'security-group'),
    ]);
    return { security_group: g };
  };
  const showRule = async (caller: Caller, id: string) => ({
    security_group_rule: ruleOf(
      await mustSee(deps, 'security-group-rules', id, caller, 'security-group-rule'),
    ),
  });

  scope.get('/v2.0/security-groups', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    const q = filters(query, [
      ['name', 'name', 'text'],
      ['id', 'uuid', 'id'],
      ['project_id', 'accountUuid', 'id'],
      ['tenant_id', 'accountUuid', 'id'],
    ]);
    const page = await listPage(deps, request, 'security-groups', caller, q);
    return {
      security_groups: pickFields(query, await groupsOf(deps, caller, page.rows)),
      security_groups_links: page.links,
    };
  });
  scope.get('/v2.0/security-groups/:id', async (request) =>
    showGroup(callerOf(request), (request.params as { id: string }).id),
  );
  scope.post('/v2.0/security-groups', { schema: { body: GroupCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const g = (request.body as Static<typeof GroupCreate>).security_group;
    refuseProject(caller, g);
    const job = await settle(
      deps,
      await groups.create!(caller, {
        name: g.name,
        ...(g.description ? { description: g.description } : {}),
      }),
    );
    return reply.code(201).send(await showGroup(caller, job.resourceUuid as string));
  });
  scope.put('/v2.0/security-groups/:id', { schema: { body: GroupUpdate } }, async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await mustSee(deps, 'security-groups', id, caller, 'security-group');
    const g = (request.body as { security_group: Record<string, unknown> }).security_group;
    if (Object.keys(g).length > 0) await settle(deps, await groups.update!(caller, id, g));
    return showGroup(caller, id);
  });
  scope.delete('/v2.0/security-groups/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await mustSee(deps, 'security-groups', id, caller, 'security-group');
    await settle(deps, await groups.remove!(caller, id));
    return reply.code(204).send();
  });

  scope.get('/v2.0/security-group-rules', async (request: FastifyRequest) => {
    const caller = callerOf(request);
    const query = request.query as Record<string, unknown>;
    const q = filters(
      query,
      [
        ['id', 'uuid', 'id'],
        ['security_group_id', 'securityGroupUuid', 'id'],
        ['remote_group_id', 'remoteSecurityGroupUuid', 'id'],
        ['direction', 'direction', 'text'],
        ['remote_ip_prefix', 'remoteCidr', 'text'],
        ['project_id', 'accountUuid', 'id'],
        ['tenant_id', 'accountUuid', 'id'],
      ],
      ['ethertype', 'protocol'],
    );
    const protocol = param(query, 'protocol');
    if (protocol !== undefined) q.push(`protocol=${PROTOCOLS[protocol.toLowerCase()]?.protocol ?? protocol}`);
    const ethertype = param(query, 'ethertype');
    if (ethertype !== undefined) q.push(`ipVersion=${ethertype === 'IPv6' ? 6 : 4}`);
    const page = await listPage(deps, request, 'security-group-rules', caller, q);
    return {
      security_group_rules: pickFields(query, page.rows.map(ruleOf)),
      security_group_rules_links: page.links,
    };
  });
  scope.get('/v2.0/security-group-rules/:id', async (request) =>
    showRule(callerOf(request), (request.params as { id: string }).id),
  );
  scope.post('/v2.0/security-group-rules', { schema: { body: RuleCreate } }, async (request, reply) => {
    const caller = callerOf(request);
    const r = (request.body as Static<typeof RuleCreate>).security_group_rule;
    refuseProject(caller, r);
    if (!(await visible(deps, 'security-groups', r.security_group_id, caller)))
      throw missingReference('security_group_id', 'security-group', r.security_group_id);
    if (r.remote_group_id && !(await visible(deps, 'security-groups', r.remote_group_id, caller)))
      throw missingReference('remote_group_id', 'security-group', r.remote_group_id);
    const job = await settle(deps, await rules.create!(caller, ruleBody(r)));
    return reply.code(201).send(await showRule(caller, job.resourceUuid as string));
  });
  scope.delete('/v2.0/security-group-rules/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    await mustSee(deps, 'security-group-rules', id, caller, 'security-group-rule');
    await settle(deps, await rules.remove!(caller, id));
    return reply.code(204).send();
  });
}
