/**
 * The OpenStack-compatible API (docs/openstack.md): Keystone v3 at /identity, Nova v2.1 at
 * /compute, Glance v2 at /image, Neutron v2.0 at /network, Cinder v3 at /volume — a façade over
 * the same kind services, jobs and rules as /v1. Each service registers itself in its own
 * Fastify scope (own error shape, own token hook); none of its routes is in the native API
 * document.
 */
import type { FastifyInstance } from 'fastify';
import { CloudError } from '../kernel/errors.js';
import { computeService } from './compute/index.js';
import { OPENSTACK_PREFIX, type OpenStackDeps, type OpenStackService } from './deps.js';
import { identityService } from './identity/index.js';
import { imageService } from './image/index.js';
import { neutron } from './network/index.js';
import { cinder } from './volume/index.js';

export type { OpenStackService } from './deps.js';

/** the services and their mount points (deps.ts OPENSTACK_PREFIX); each adds itself here */
const SERVICES: { prefix: string; register: OpenStackService }[] = [
  { prefix: OPENSTACK_PREFIX.identity, register: identityService },
  { prefix: OPENSTACK_PREFIX.compute, register: computeService },
  { prefix: OPENSTACK_PREFIX.image, register: imageService },
  { prefix: OPENSTACK_PREFIX.network, register: neutron },
  { prefix: OPENSTACK_PREFIX.volume, register: cinder },
];

export async function registerOpenStackApi(app: FastifyInstance, deps: OpenStackDeps): Promise<void> {
  for (const s of SERVICES)
    await app.register(
      async (scope) => {
        // the façade follows the OpenStack references, not the native API document
        scope.addHook('onRoute', (route) => {
          route.schema = { ...(route.schema ?? {}), hide: true };
        });
        openStackConventions(scope);
        await s.register(scope, deps);
      },
      { prefix: s.prefix },
    );
}

/**
 * What every OpenStack service does alike: each answer names its request
 * (`x-openstack-request-id`, which Tempest and the clients log), and a JSON body may be empty
 * (clients send `Content-Type: application/json` on a DELETE or an action without a body).
 */
function openStackConventions(scope: FastifyInstance): void {
  scope.addHook('onSend', async (request, reply) => {
    void reply.header('x-openstack-request-id', `req-${request.id}`);
  });
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new CloudError('Invalid', 'INVALID_JSON', 'the body is not valid JSON'), undefined);
    }
  });
}
