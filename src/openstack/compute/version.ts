/**
 * Nova's version documents and microversion negotiation. The façade serves v2.1 at microversion
 * 2.1 only (MAX = MIN): a request naming 2.1 or none or "latest" is served as 2.1; any other is
 * refused with 406 as Nova refuses a version it does not offer. Clients negotiate from the
 * version document (openstacksdk reads `version`/`min_version`; novaclient 2.1 asks for 2.1),
 * so openstackclient 6.0.0 uses 2.1 throughout. Every answer names the version it was served at.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CloudError } from '../../kernel/errors.js';
import { OPENSTACK_PREFIX } from '../deps.js';
import { baseUrl } from '../urls.js';

export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.1';

function v21(request: FastifyRequest) {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: MAX_VERSION,
    min_version: MIN_VERSION,
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${baseUrl(request)}${OPENSTACK_PREFIX.compute}/v2.1/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

/** the version asked for by either header (`OpenStack-API-Version: compute 2.1` wins) */
export function requestedVersion(request: FastifyRequest): string | undefined {
  const h = request.headers['openstack-api-version'];
  const text = Array.isArray(h) ? h.join(',') : h;
  if (text) {
    for (const part of text.split(',')) {
      const [service, version] = part.trim().split(/\s+/);
      if (service?.toLowerCase() === 'compute' && version) return version;
    }
  }
  const legacy = request.headers['x-openstack-nova-api-version'];
  return typeof legacy === 'string' && legacy.length > 0 ? legacy : undefined;
}

export function registerVersions(scope: FastifyInstance): void {
  scope.addHook('onRequest', async (request, reply) => {
    const asked = requestedVersion(request);
    if (asked !== undefined && asked !== 'latest' && asked !== MIN_VERSION) {
      if (!/^\d+\.\d+$/.test(asked))
        throw new CloudError('Invalid', 'VERSION_INVALID', `Invalid API version request string ${asked}`);
      // 406 is Nova's answer to a version it does not offer (no CloudError reason has that status)
      const message = `Version ${asked} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`;
      return reply.code(406).send({ notAcceptable: { code: 406, message } });
    }
    void reply.header('openstack-api-version', `compute ${MAX_VERSION}`);
    void reply.header('x-openstack-nova-api-version', MAX_VERSION);
    void reply.header('vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
  });
  scope.get('/', async (request) => ({
    versions: [
      {
        id: 'v2.0',
        status: 'SUPPORTED',
        version: '',
        min_version: '',
        updated: '2011-01-21T11:33:21Z',
        links: [{ rel: 'self', href: `${baseUrl(request)}${OPENSTACK_PREFIX.compute}/v2/` }],
      },
      v21(request),
    ].filter((v) => v.id === 'v2.1'),
  }));
  scope.get('/v2.1', async (request) => ({ version: v21(request) }));
  scope.get('/v2.1/', async (request) => ({ version: v21(request) }));
}
