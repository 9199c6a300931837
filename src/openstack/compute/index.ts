/**
 * Nova v2.1 at /compute (docs/openstack.md "Compute"): versions and microversion negotiation,
 * servers and their actions, flavors, keypairs, and the smaller resources (extras.ts). Every
 * route but the version documents needs X-Auth-Token; failures answer in Nova's fault shape.
 */
import type { FastifyInstance } from 'fastify';
import { requireToken } from '../auth.js';
import { OPENSTACK_PREFIX, type OpenStackDeps, type OpenStackService } from '../deps.js';
import { useOpenStackErrors } from '../errors.js';
import { registerExtras } from './extras.js';
import { registerFlavors } from './flavors.js';
import { registerKeypairs } from './keypairs.js';
import { registerServerActions } from './server-actions.js';
import { registerServers } from './servers.js';
import { registerVersions } from './version.js';

export const computeService: OpenStackService = (scope: FastifyInstance, deps: OpenStackDeps) => {
  useOpenStackErrors(scope, 'nova');
  requireToken(scope, deps.sessions, (path) => {
    const rest = path.slice(OPENSTACK_PREFIX.compute.length).replace(/\/+$/, '');
    return rest === '' || rest === '/v2.1';
  });
  registerVersions(scope);
  registerServers(scope, deps);
  registerServerActions(scope, deps);
  registerFlavors(scope, deps);
  registerKeypairs(scope, deps);
  registerExtras(scope, deps);
};
