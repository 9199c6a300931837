/**
 * Neutron's discovery answers: versions, the v2.0 resource list, the extensions this façade
 * really implements (clients switch features on by these aliases, so none is listed that is not
 * served), and quotas — Nimbus does not limit network resources, so every Neutron quota is -1
 * (unlimited) and the details show what is used.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import type { OpenStackDeps } from '../deps.js';
import { listAll } from './facade.js';
import { assertProject } from './project.js';
import { readRouters } from './router-store.js';

const UPDATED = '2026-12-07T00:00:00-00:00';
const EXTENSIONS: [alias: string, name: string, description: string][] = [
  [
    'external-net',
    'Neutron external network',
    'router:external: public networks, for floating IPs and router gateways',
  ],
  ['router', 'Neutron L3 Router', 'routers with an external gateway and subnet interfaces; floating IPs'],
  ['security-group', 'security-group', 'security groups and their rules'],
  ['quotas', 'Quota management support', 'quotas of a project (network resources are not limited)'],
  [
    'provider',
    'Provider Network',
    'the L2 segment of a network (read; chosen among the admin’s L2 networks)',
  ],
  ['binding', 'Port Binding', 'the host a port is on'],
  ['network-mtu', 'Network MTU', 'the MTU of a network'],
  ['standard-attr-description', 'standard-attr-description', 'a description on every resource'],
  ['pagination', 'Pagination support', 'limit, marker and page_reverse on lists'],
  ['project-id', 'project_id field enabled', 'project_id beside tenant_id'],
];

function extensionOf([alias, name, description]: (typeof EXTENSIONS)[number]) {
  return { alias, name, description, updated: UPDATED, links: [] };
}

const QUOTA_KINDS = [
  'network',
  'subnet',
  'port',
  'router',
  'floatingip',
  'security_group',
  'security_group_rule',
];

export function registerDiscovery(scope: FastifyInstance, deps: OpenStackDeps): void {
  const base = (request: FastifyRequest) =>
    `${request.protocol}://${request.headers.host ?? 'localhost'}/network`;
  scope.get('/', async (request) => ({
    versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${base(request)}/v2.0/`, rel: 'self' }] }],
  }));
  const resources = [
    'networks',
    'subnets',
    'ports',
    'routers',
    'floatingips',
    'security-groups',
    'security-group-rules',
    'quotas',
    'extensions',
  ];
  const index = async (request: FastifyRequest) => ({
    resources: resources.map((r) => ({
      name: r.replace(/s$/, '').replace(/-/g, '_'),
      collection: r,
      links: [{ href: `${base(request)}/v2.0/${r}`, rel: 'self' }],
    })),
  });
  scope.get('/v2.0', index);
  scope.get('/v2.0/', index);

  scope.get('/v2.0/extensions', async () => ({ extensions: EXTENSIONS.map(extensionOf) }));
  scope.get('/v2.0/extensions/:alias', async (request) => {
    const { alias } = request.params as { alias: string };
    const e = EXTENSIONS.find((x) => x[0] === alias);
    if (!e) throw new CloudError('NotFound', 'EXTENSION_NOT_FOUND', `extension ${alias} is not supported`);
    return { extension: extensionOf(e) };
  });

  const unlimited = () => Object.fromEntries(QUOTA_KINDS.map((k) => [k, -1]));
  scope.get('/v2.0/quotas', async (request) => {
    if (!callerOf(request).isAdmin)
      throw new CloudError('Forbidden', 'FORBIDDEN', 'only the admin lists every project’s quotas');
    // Neutron lists projects whose quotas differ from the defaults: none does here
    return { quotas: [] };
  });
  scope.get('/v2.0/quotas/:project/default', async (request) => {
    assertProject(callerOf(request), (request.params as { project: string }).project);
    return { quota: unlimited() };
  });
  scope.get('/v2.0/quotas/:project', async (request) => {
    assertProject(callerOf(request), (request.params as { project: string }).project);
    return { quota: unlimited() };
  });
  scope.get('/v2.0/quotas/:project/details', async (request) => {
    const caller = callerOf(request);
    const { project } = request.params as { project: string };
    assertProject(caller, project);
    const own = { ...caller, isAdmin: false, accountUuid: caller.isAdmin ? project : caller.accountUuid };
    const count = async (kind: string, q: string[] = []) =>
      (await listAll(deps, kind, own, [`accountUuid=${own.accountUuid}`, ...q]).catch(() => [])).length;
    const used: Record<string, number> = {
      network: await count('l3-networks'),
      subnet: await count('ip-ranges', ['type=normal']),
      port: await count('vm-nics'),
      router: (await readRouters(deps.db, own, { limit: 100000 })).length,
      floatingip: await count('eips'),
      security_group: await count('security-groups'),
      security_group_rule: await count('security-group-rules'),
    };
    return {
      quota: Object.fromEntries(QUOTA_KINDS.map((k) => [k, { limit: -1, used: used[k] ?? 0, reserved: 0 }])),
    };
  });
  const noLimits = async () => {
    throw invalidField(
      'quota',
      'Nimbus does not limit network resources (its quotas are on VMs, volumes, snapshots and images)',
      'QUOTA_NOT_SUPPORTED',
    );
  };
  scope.put('/v2.0/quotas/:project', noLimits);
  scope.delete('/v2.0/quotas/:project', noLimits);
}
