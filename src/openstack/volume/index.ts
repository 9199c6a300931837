/**
 * Cinder v3 at /volume (docs/openstack-network-volume.md): volumes (Nimbus volumes), their
 * actions and attachments, snapshots, volume types (primary storages), quota sets and limits,
 * under /volume/v3/{project_id}. Errors in the Nova-like fault shape Cinder uses
 * (`{"itemNotFound": {"code": 404, "message": …}}`). Microversions 3.0–3.27, negotiated with
 * `OpenStack-API-Version: volume 3.x` as Cinder does (406 beyond them); /attachments needs 3.27.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import { requireToken } from '../auth.js';
import type { OpenStackDeps } from '../deps.js';
import { openStackErrorBody, useOpenStackErrors } from '../errors.js';
import { assertProject, projectUuid } from '../network/project.js';
import { ATTACHMENTS_MICROVERSION, registerAttachments } from './attachments.js';
import { registerLimits } from './limits.js';
import { registerSnapshots } from './snapshots.js';
import { registerVolumes } from './volumes.js';

export const MIN_MICROVERSION = 0;
export const MAX_MICROVERSION = ATTACHMENTS_MICROVERSION;
const PUBLIC = new Set(['/volume', '/volume/', '/volume/v3', '/volume/v3/']);

/**
 * The minor version a request asks for (3.<minor>): a malformed header is a 400 (Cinder's
 * InvalidAPIVersionString), a version out of 3.0–3.MAX a 406 (Cinder's InvalidGlobalAPIVersion).
 */
export function requestedMinor(request: FastifyRequest): number | { status: 400 | 406; message: string } {
  const header = request.headers['openstack-api-version'];
  const text = typeof header === 'string' ? header.trim() : '';
  if (!text) return MIN_MICROVERSION;
  const m = /^volume\s+(?:(\d+)\.(\d+)|(latest))$/i.exec(text);
  if (!m) return { status: 400, message: `OpenStack-API-Version '${text}' is not 'volume <major>.<minor>'` };
  if (m[3]) return MAX_MICROVERSION;
  const minor = Number(m[2]);
  if (m[1] === '3' && minor >= MIN_MICROVERSION && minor <= MAX_MICROVERSION) return minor;
  return {
    status: 406,
    message: `Version ${m[1]}.${m[2]} is not supported by the API. Minimum is 3.${MIN_MICROVERSION} and maximum is 3.${MAX_MICROVERSION}.`,
  };
}

function versionDoc(request: FastifyRequest) {
  const href = `${request.protocol}://${request.headers.host ?? 'localhost'}/volume/v3/`;
  return {
    id: 'v3.0',
    status: 'CURRENT',
    version: `3.${MAX_MICROVERSION}`,
    min_version: `3.${MIN_MICROVERSION}`,
    updated: '2026-12-07T00:00:00Z',
    links: [{ rel: 'self', href }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}

/** an OpenStackService (../index.js), typed here without importing it back */
export function cinder(scope: FastifyInstance, deps: OpenStackDeps): void {
  useOpenStackErrors(scope, 'nova');
  scope.setNotFoundHandler((request, reply) => {
    const ce = new CloudError(
      'NotFound',
      'RESOURCE_NOT_FOUND',
      `no Cinder resource at ${request.method} ${request.url}`,
    );
    void reply.code(404).send(openStackErrorBody('nova', ce));
  });
  requireToken(scope, deps.sessions, (path, method) => method === 'GET' && PUBLIC.has(path));
  scope.addHook('onRequest', async (request, reply) => {
    const minor = requestedMinor(request);
    if (typeof minor !== 'number') {
      // Cinder's fault names: 400 badRequest, anything without a name (406) computeFault
      const fault = minor.status === 400 ? 'badRequest' : 'computeFault';
      return reply.code(minor.status).send({ [fault]: { code: minor.status, message: minor.message } });
    }
    void reply.header('OpenStack-API-Version', `volume 3.${minor}`).header('Vary', 'OpenStack-API-Version');
    if (request.url.includes('/attachments') && minor < ATTACHMENTS_MICROVERSION)
      throw new CloudError(
        'NotFound',
        'MICROVERSION_TOO_LOW',
        `attachments need OpenStack-API-Version: volume 3.${ATTACHMENTS_MICROVERSION}`,
      );
  });
  // every route under /v3/{project_id}: the project must be the token's (the admin: any)
  scope.addHook('preHandler', async (request) => {
    const project = (request.params as { project_id?: string } | undefined)?.project_id;
    if (project === undefined || !request.caller) return;
    if (!isUuid(projectUuid(project)))
      throw invalidField(
        'project_id',
        `'${project}' is not a project id (an account UUID, with or without dashes)`,
      );
    assertProject(callerOf(request), project);
  });

  // Cinder's root answers 300 Multiple Choices (what Tempest's version test expects)
  scope.get('/', async (request, reply) => reply.code(300).send({ versions: [versionDoc(request)] }));
  scope.get('/v3', async (request) => ({ versions: [versionDoc(request)] }));
  scope.get('/v3/', async (request) => ({ versions: [versionDoc(request)] }));
  registerVolumes(scope, deps);
  registerAttachments(scope, deps);
  registerSnapshots(scope, deps);
  registerLimits(scope, deps);
}
