/**
 * Keystone application credentials: a user makes a named secret that logs in as that user on its
 * project (`POST /v3/auth/tokens` with the `application_credential` method), so a script need not
 * hold the password. Only the secret's scrypt hash is kept (as for passwords); the secret is
 * shown once, at creation. A user manages only its own; deleting one does not end the sessions
 * already opened with it (they expire as any token does). Roles are the user's own (a credential
 * cannot hold more), and `access_rules` are not offered.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import type { Db } from '../../db/pool.js';
import { CloudError, forbidden, invalidField } from '../../kernel/errors.js';
import { isUuid, newId } from '../../kernel/ids.js';
import { hashPassword, verifyPassword } from '../../resources/identity/account/password.js';
import { OPENSTACK_PREFIX } from '../deps.js';
import { baseUrl } from '../urls.js';
import { rolesOf } from './roles.js';

type Obj = Record<string, unknown>;
type Row = {
  uuid: string;
  userUuid: string;
  accountUuid: string;
  name: string;
  description: string | null;
  expiresAt: Date | null;
  unrestricted: boolean;
};

const NAME = /^[^\s/][^/]{0,254}$/;

const notFound = (id: string) =>
  new CloudError(
    'NotFound',
    'APPLICATION_CREDENTIAL_NOT_FOUND',
    `Could not find application credential: ${id}.`,
  );

function view(request: FastifyRequest, r: Row, isAdmin: boolean): Obj {
  return {
    id: r.uuid,
    name: r.name,
    description: r.description,
    project_id: r.accountUuid,
    user_id: r.userUuid,
    expires_at: r.expiresAt ? new Date(r.expiresAt).toISOString() : null,
    unrestricted: r.unrestricted,
    roles: rolesOf(isAdmin),
    access_rules: [],
    links: {
      self: `${baseUrl(request)}${OPENSTACK_PREFIX.identity}/v3/users/${r.userUuid}/application_credentials/${r.uuid}`,
    },
  };
}

/** the user an application-credential login is for, once its secret is checked */
export async function checkAppCredential(
  db: Db,
  given: Obj,
): Promise<{ userUuid: string; accountUuid: string }> {
  const refused = () =>
    new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong application credential or secret');
  const secret = typeof given.secret === 'string' ? given.secret : undefined;
  if (!secret) throw invalidField('auth.identity.application_credential.secret', 'required', 'AUTH_REQUIRED');
  let q = db
    .selectFrom('openstackAppCredentials as c')
    .innerJoin('users as u', 'u.uuid', 'c.userUuid')
    .selectAll('c');
  if (typeof given.id === 'string') {
    if (!isUuid(given.id)) throw refused();
    q = q.where('c.uuid', '=', given.id);
  } else if (typeof given.name === 'string') {
    const user = (given.user ?? {}) as Obj;
    if (typeof user.id === 'string' && isUuid(user.id)) q = q.where('c.userUuid', '=', user.id);
    else if (typeof user.name === 'string') q = q.where('u.name', '=', user.name);
    else
      throw invalidField(
        'auth.identity.application_credential.user',
        'give the user (id, or name and domain) with a name',
        'AUTH_REQUIRED',
      );
    q = q.where('c.name', '=', given.name);
  } else
    throw invalidField(
      'auth.identity.application_credential',
      'give its id, or its name and user',
      'AUTH_REQUIRED',
    );
  const rows = await q.limit(2).execute();
  const row = rows.length === 1 ? rows[0] : undefined;
  // the hash is checked even for an unknown credential, so timing does not tell them apart
  const ok = await verifyPassword(secret, row?.secretHash ?? (await hashPassword('x')));
  if (!row || !ok) throw refused();
  if (row.expiresAt && new Date(row.expiresAt).getTime() <= Date.now())
    throw new CloudError(
      'Unauthenticated',
      'APPLICATION_CREDENTIAL_EXPIRED',
      'the application credential has expired',
    );
  return { userUuid: row.userUuid, accountUuid: row.accountUuid };
}

export function registerAppCredentials(scope: FastifyInstance, db: Db): void {
  const own = (request: FastifyRequest) => {
    const { user } = request.params as { user: string };
    const c = callerOf(request);
    if (user !== c.userUuid)
      throw forbidden(
        'a user manages only its own application credentials',
        'APPLICATION_CREDENTIAL_NOT_YOURS',
      );
    return c;
  };
  const columns = [
    'uuid',
    'userUuid',
    'accountUuid',
    'name',
    'description',
    'expiresAt',
    'unrestricted',
  ] as const;

  scope.post('/v3/users/:user/application_credentials', async (request, reply) => {
    const c = own(request);
    const b = ((request.body ?? {}) as Obj).application_credential as Obj | undefined;
    if (!b || typeof b.name !== 'string' || !NAME.test(b.name))
      throw invalidField(
        'application_credential.name',
        'required: 1 to 255 characters, no slash',
        'INVALID_NAME',
      );
    let expiresAt: Date | null = null;
    if (b.expires_at !== undefined && b.expires_at !== null) {
      expiresAt = new Date(String(b.expires_at));
      if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= Date.now())
        throw invalidField(
          'application_credential.expires_at',
          'a time in the future (ISO 8601)',
          'INVALID_EXPIRY',
        );
    }
    const secret =
      typeof b.secret === 'string' && b.secret.length > 0 ? b.secret : randomBytes(32).toString('base64url');
    const row = await db
      .insertInto('openstackAppCredentials')
      .values({
        uuid: newId(),
        userUuid: c.userUuid,
        accountUuid: c.accountUuid,
        name: b.name,
        description: typeof b.description === 'string' ? b.description : null,
        secretHash: await hashPassword(secret),
        expiresAt,
        unrestricted: b.unrestricted === true,
      })
      .onConflict((oc) => oc.doNothing())
      .returning(columns)
      .executeTakeFirst();
    if (!row)
      throw new CloudError(
        'Conflict',
        'APPLICATION_CREDENTIAL_EXISTS',
        `an application credential named ${b.name} exists`,
      );
    return reply.code(201).send({ application_credential: { ...view(request, row, c.isAdmin), secret } });
  });

  scope.get('/v3/users/:user/application_credentials', async (request) => {
    const c = own(request);
    const name = (request.query as Obj).name;
    let q = db
      .selectFrom('openstackAppCredentials')
      .select(columns)
      .where('userUuid', '=', c.userUuid)
      .orderBy('name');
    if (typeof name === 'string') q = q.where('name', '=', name);
    return {
      application_credentials: (await q.execute()).map((r) => view(request, r, c.isAdmin)),
      links: { self: null, next: null, previous: null },
    };
  });

  const load = async (request: FastifyRequest) => {
    const c = own(request);
    const { id } = request.params as { id: string };
    const row = isUuid(id)
      ? await db
          .selectFrom('openstackAppCredentials')
          .select(columns)
          .where('uuid', '=', id)
          .where('userUuid', '=', c.userUuid)
          .executeTakeFirst()
      : undefined;
    if (!row) throw notFound(id);
    return { c, row };
  };
  scope.get('/v3/users/:user/application_credentials/:id', async (request) => {
    const { c, row } = await load(request);
    return { application_credential: view(request, row, c.isAdmin) };
  });
  scope.delete('/v3/users/:user/application_credentials/:id', async (request, reply) => {
    const { row } = await load(request);
    await db.deleteFrom('openstackAppCredentials').where('uuid', '=', row.uuid).execute();
    return reply.code(204).send();
  });
}
