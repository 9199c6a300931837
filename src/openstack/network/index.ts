/**
 * Neutron v2.0 at /network (docs/openstack-network-volume.md): networks and subnets (Nimbus L3
 * networks and their IP ranges), ports (VM NICs), routers (router-store.ts over the L3s' virtual
 * routers), floating IPs (EIPs on VIPs), security groups and rules, quotas, extensions. Errors in
 * Neutron's shape; every route but version discovery needs X-Auth-Token.
 */
import type { FastifyInstance } from 'fastify';
import { CloudError } from '../../kernel/errors.js';
import { requireToken } from '../auth.js';
import type { OpenStackDeps } from '../deps.js';
import { openStackErrorBody, useOpenStackErrors } from '../errors.js';
import { registerDiscovery } from './extensions.js';
import { registerFloatingIps } from './floating-ips.js';
import { registerNetworks } from './networks.js';
import { registerPorts } from './ports.js';
import { registerRouters } from './routers.js';
import { registerSecurityGroups } from './security-groups.js';
import { registerSubnets } from './subnets.js';

const PUBLIC = new Set(['/network', '/network/', '/network/v2.0', '/network/v2.0/']);

/** an OpenStackService (../index.js), typed here without importing it back */
export function neutron(scope: FastifyInstance, deps: OpenStackDeps): void {
  useOpenStackErrors(scope, 'neutron');
  scope.setNotFoundHandler((request, reply) => {
    const ce = new CloudError(
      'NotFound',
      'RESOURCE_NOT_FOUND',
      `no Neutron resource at ${request.method} ${request.url}`,
    );
    void reply.code(404).send(openStackErrorBody('neutron', ce));
  });
  requireToken(scope, deps.sessions, (path, method) => method === 'GET' && PUBLIC.has(path));
  registerDiscovery(scope, deps);
  registerNetworks(scope, deps);
  registerSubnets(scope, deps);
  registerPorts(scope, deps);
  registerRouters(scope, deps);
  registerFloatingIps(scope, deps);
  registerSecurityGroups(scope, deps);
}
