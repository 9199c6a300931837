/**
 * Keystone v3 at /identity (docs/openstack.md "Identity"): version discovery, tokens (issue,
 * validate, revoke), the catalog, and read-only views of projects (accounts), users, roles,
 * domains, services and endpoints. Accounts and users are changed through the native API;
 * here they are shown as Keystone shows them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import type { Db } from '../../db/pool.js';
import { CloudError, forbidden } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import { requireToken } from '../auth.js';
import { OPENSTACK_PREFIX, type OpenStackService } from '../deps.js';
import { useOpenStackErrors } from '../errors.js';
import { baseUrl, serviceUrls } from '../urls.js';
import { registerAppCredentials } from './app-credentials.js';
import { catalogFor, endpointsList, servicesList } from './catalog.js';
import { DEFAULT_DOMAIN, rolesOf, TokenIssuer, tokenBody } from './tokens.js';

const P = OPENSTACK_PREFIX.identity;

function versionDoc(request: FastifyRequest) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${baseUrl(request)}${P}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

const notFound = (what: string, id: string) =>
  new CloudError('NotFound', `${what.toUpperCase()}_NOT_FOUND`, `Could not find ${what}: ${id}.`);

function projectView(request: FastifyRequest, a: { uuid: string; name: string; description: string | null }) {
  return {
    id: a.uuid,
    name: a.name,
    description: a.description ?? '',
    domain_id: DEFAULT_DOMAIN.id,
    enabled: true,
    is_domain: false,
    parent_id: DEFAULT_DOMAIN.id,
    tags: [],
    options: {},
    links: { self: `${baseUrl(request)}${P}/v3/projects/${a.uuid}` },
  };
}

function userView(
  request: FastifyRequest,
  u: { uuid: string; name: string; accountUuid: string; description: string | null },
) {
  return {
    id: u.uuid,
    name: u.name,
    domain_id: DEFAULT_DOMAIN.id,
    default_project_id: u.accountUuid,
    description: u.description ?? '',
    enabled: true,
    password_expires_at: null,
    options: {},
    links: { self: `${baseUrl(request)}${P}/v3/users/${u.uuid}` },
  };
}

async function accountsVisible(db: Db, request: FastifyRequest) {
  const c = callerOf(request);
  let q = db.selectFrom('accounts').select(['uuid', 'name', 'description', 'type']).orderBy('name');
  if (!c.isAdmin) q = q.where('uuid', '=', c.accountUuid);
  const name = (request.query as Record<string, unknown>).name;
  if (typeof name === 'string') q = q.where('name', '=', name);
  return q.execute();
}

async function usersVisible(db: Db, request: FastifyRequest, accountUuid?: string) {
  const c = callerOf(request);
  let q = db.selectFrom('users').select(['uuid', 'name', 'accountUuid', 'description']).orderBy('name');
  if (!c.isAdmin) q = q.where('accountUuid', '=', c.accountUuid);
  if (accountUuid) q = q.where('accountUuid', '=', accountUuid);
  const name = (request.query as Record<string, unknown>).name;
  if (typeof name === 'string') q = q.where('name', '=', name);
  return q.execute();
}

export const identityService: OpenStackService = (scope: FastifyInstance, deps) => {
  const { db, sessions } = deps;
  const issuer = new TokenIssuer(db, sessions);
  useOpenStackErrors(scope, 'keystone');
  requireToken(scope, sessions, (path, method) => {
    const rest = path.slice(P.length).replace(/\/+$/, '');
    return rest === '' || rest === '/v3' || (rest === '/v3/auth/tokens' && method === 'POST');
  });

  scope.get('/', async (request, reply) =>
    reply.code(300).send({ versions: { values: [versionDoc(request)] } }),
  );
  scope.get('/v3', async (request) => ({ version: versionDoc(request) }));
  scope.get('/v3/', async (request) => ({ version: versionDoc(request) }));

  scope.post('/v3/auth/tokens', async (request, reply) => {
    const { token, body } = await issuer.issue(request);
    return reply.code(201).header('x-subject-token', token).send(body);
  });

  /** the subject token of GET/HEAD/DELETE: the caller's own, or anyone's for the admin */
  const subject = async (request: FastifyRequest) => {
    const given = request.headers['x-subject-token'];
    if (typeof given !== 'string' || given.length === 0)
      throw new CloudError('NotFound', 'TOKEN_NOT_FOUND', 'send X-Subject-Token: the token to look at');
    let info: Awaited<ReturnType<typeof sessions.validate>>;
    try {
      info = await sessions.validate(given);
    } catch (err) {
      // Keystone answers a bad subject token with 404 (the caller's own token was good)
      if (err instanceof CloudError && err.reason === 'Unauthenticated')
        throw new CloudError('NotFound', 'TOKEN_NOT_FOUND', `the subject token is not valid: ${err.message}`);
      throw err;
    }
    const c = callerOf(request);
    if (!c.isAdmin && info.userUuid !== c.userUuid)
      throw forbidden('only the admin may look at another user’s token', 'TOKEN_NOT_YOURS');
    return { token: given, info };
  };

  scope.get('/v3/auth/tokens', async (request, reply) => {
    const { token, info } = await subject(request);
    const body = await tokenBody(db, request, info, { kind: 'project' }, info.sessionUuid);
    return reply.header('x-subject-token', token).send(body);
  });
  // HEAD /v3/auth/tokens: Fastify answers HEAD from the GET route (headers, no body)
  scope.delete('/v3/auth/tokens', async (request, reply) => {
    const { token } = await subject(request);
    await sessions.logout(token);
    return reply.code(204).send();
  });

  registerAppCredentials(scope, db);

  scope.get('/v3/auth/catalog', async (request) => ({
    catalog: catalogFor(serviceUrls(request), callerOf(request).accountUuid),
    links: { self: `${baseUrl(request)}${P}/v3/auth/catalog` },
  }));
  scope.get('/v3/auth/projects', async (request) => {
    const c = callerOf(request);
    const rows = await db
      .selectFrom('accounts')
      .select(['uuid', 'name', 'description'])
      .where('uuid', '=', c.accountUuid)
      .execute();
    return {
      projects: rows.map((r) => projectView(request, r)),
      links: { self: null, next: null, previous: null },
    };
  });
  scope.get('/v3/auth/domains', async () => ({
    domains: [domainView()],
    links: { self: null, next: null, previous: null },
  }));

  scope.get('/v3/projects', async (request) => ({
    projects: (await accountsVisible(db, request)).map((r) => projectView(request, r)),
    links: { self: `${baseUrl(request)}${P}/v3/projects`, next: null, previous: null },
  }));
  scope.get('/v3/projects/:id', async (request) => {
    const { id } = request.params as { id: string };
    const c = callerOf(request);
    const row =
      isUuid(id) && (c.isAdmin || id === c.accountUuid)
        ? await db
            .selectFrom('accounts')
            .select(['uuid', 'name', 'description'])
            .where('uuid', '=', id)
            .executeTakeFirst()
        : undefined;
    if (!row) throw notFound('project', id);
    return { project: projectView(request, row) };
  });

  scope.get('/v3/users', async (request) => ({
    users: (await usersVisible(db, request)).map((u) => userView(request, u)),
    links: { self: `${baseUrl(request)}${P}/v3/users`, next: null, previous: null },
  }));
  scope.get('/v3/users/:id', async (request) => {
    const { id } = request.params as { id: string };
    const c = callerOf(request);
    const row = isUuid(id)
      ? await db
          .selectFrom('users')
          .select(['uuid', 'name', 'accountUuid', 'description'])
          .where('uuid', '=', id)
          .executeTakeFirst()
      : undefined;
    if (!row || (!c.isAdmin && row.accountUuid !== c.accountUuid)) throw notFound('user', id);
    return { user: userView(request, row) };
  });
  scope.get('/v3/users/:id/projects', async (request) => {
    const { id } = request.params as { id: string };
    const c = callerOf(request);
    const user = isUuid(id)
      ? await db.selectFrom('users').select(['accountUuid']).where('uuid', '=', id).executeTakeFirst()
      : undefined;
    if (!user || (!c.isAdmin && user.accountUuid !== c.accountUuid)) throw notFound('user', id);
    const rows = await db
      .selectFrom('accounts')
      .select(['uuid', 'name', 'description'])
      .where('uuid', '=', user.accountUuid)
      .execute();
    return {
      projects: rows.map((r) => projectView(request, r)),
      links: { self: null, next: null, previous: null },
    };
  });

  scope.get('/v3/roles', async (request) => {
    const name = (request.query as Record<string, unknown>).name;
    const roles = rolesOf(true)
      .filter((r) => typeof name !== 'string' || r.name === name)
      .map((r) => ({
        ...r,
        domain_id: null,
        description: null,
        options: {},
        links: { self: `${baseUrl(request)}${P}/v3/roles/${r.id}` },
      }));
    return { roles, links: { self: `${baseUrl(request)}${P}/v3/roles`, next: null, previous: null } };
  });
  scope.get('/v3/roles/:id', async (request) => {
    const { id } = request.params as { id: string };
    const role = rolesOf(true).find((r) => r.id === id);
    if (!role) throw notFound('role', id);
    return {
      role: {
        ...role,
        domain_id: null,
        description: null,
        options: {},
        links: { self: `${baseUrl(request)}${P}/v3/roles/${id}` },
      },
    };
  });
  // every user holds its account's roles on its own project (rolesOf)
  scope.get('/v3/role_assignments', async (request) => {
    const users = await db
      .selectFrom('users as u')
      .innerJoin('accounts as a', 'a.uuid', 'u.accountUuid')
      .select(['u.uuid as userUuid', 'a.uuid as accountUuid', 'a.type'])
      .$if(!callerOf(request).isAdmin, (q) => q.where('a.uuid', '=', callerOf(request).accountUuid))
      .execute();
    const q = request.query as Record<string, unknown>;
    const assignments = users
      .filter((u) => typeof q['user.id'] !== 'string' || q['user.id'] === u.userUuid)
      .filter((u) => typeof q['scope.project.id'] !== 'string' || q['scope.project.id'] === u.accountUuid)
      .flatMap((u) =>
        rolesOf(u.type === 'admin').map((r) => ({
          role: { id: r.id },
          user: { id: u.userUuid },
          scope: { project: { id: u.accountUuid } },
          links: {
            assignment: `${baseUrl(request)}${P}/v3/projects/${u.accountUuid}/users/${u.userUuid}/roles/${r.id}`,
          },
        })),
      );
    return { role_assignments: assignments, links: { self: null, next: null, previous: null } };
  });

  const domainView = () => ({
    ...DEFAULT_DOMAIN,
    description: 'the one domain',
    enabled: true,
    tags: [],
    options: {},
    links: {},
  });
  scope.get('/v3/domains', async () => ({
    domains: [domainView()],
    links: { self: null, next: null, previous: null },
  }));
  scope.get('/v3/domains/:id', async (request) => {
    const { id } = request.params as { id: string };
    if (id !== DEFAULT_DOMAIN.id) throw notFound('domain', id);
    return { domain: domainView() };
  });
  scope.get('/v3/services', async () => ({
    services: servicesList(),
    links: { self: null, next: null, previous: null },
  }));
  scope.get('/v3/endpoints', async (request) => ({
    endpoints: endpointsList(serviceUrls(request)),
    links: { self: null, next: null, previous: null },
  }));
};
