/**
 * Keystone v3 password authentication over Nimbus's accounts: a project is an account, the one
 * domain is "Default", a user is a user of that account. `POST /v3/auth/tokens` logs in through
 * the same Sessions as `POST /v1/auth/login` (same passwords, same throttle rules), so the token
 * in `X-Subject-Token` also works as a native bearer token, and revoking it (DELETE) logs out.
 *
 * Scope: a project (by name or id; it must be the user's own account), the Default domain, or
 * none (unscoped: no catalog, as Keystone). A token cannot be scoped to another account's
 * project: Nimbus users belong to exactly one account.
 */
import type { FastifyRequest } from 'fastify';
import { LoginThrottle } from '../../api/login-throttle.js';
import type { Db } from '../../db/pool.js';
import { CloudError, invalidField } from '../../kernel/errors.js';
import type { SessionInfo, Sessions } from '../../resources/identity/session/sessions.js';
import { serviceUrls } from '../urls.js';
import { checkAppCredential } from './app-credentials.js';
import { catalogFor } from './catalog.js';
import { rolesOf } from './roles.js';

export { rolesOf } from './roles.js';

export const DEFAULT_DOMAIN = { id: 'default', name: 'Default' } as const;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

function checkDomain(d: Obj | undefined, field: string): void {
  if (!d) return;
  const id = str(d.id);
  const name = str(d.name);
  if ((id && id !== DEFAULT_DOMAIN.id) || (name && name !== DEFAULT_DOMAIN.name))
    throw new CloudError(
      'Unauthenticated',
      'DOMAIN_UNKNOWN',
      `${field}: the only domain is Default (id "default")`,
    );
}

export interface TokenScope {
  kind: 'project' | 'domain' | 'unscoped';
}

interface Who {
  userUuid: string;
  userName: string;
  accountUuid: string;
  accountName: string;
  isAdmin: boolean;
}

async function whoIs(db: Db, by: { userUuid: string }): Promise<Who> {
  const row = await db
    .selectFrom('users as u')
    .innerJoin('accounts as a', 'a.uuid', 'u.accountUuid')
    .select([
      'u.uuid as userUuid',
      'u.name as userName',
      'a.uuid as accountUuid',
      'a.name as accountName',
      'a.type',
    ])
    .where('u.uuid', '=', by.userUuid)
    .executeTakeFirst();
  if (!row) throw new CloudError('Unauthenticated', 'TOKEN_INVALID', 'the token’s user no longer exists');
  return { ...row, isAdmin: row.type === 'admin' };
}

/**
 * The account (project) a password login is for: the project asked for, else the one account
 * that has a user of that name. Returns its name (Sessions.login takes names).
 */
async function accountForLogin(
  db: Db,
  userName: string | undefined,
  userId: string | undefined,
  project: Obj | undefined,
) {
  if (project) {
    checkDomain(obj(project.domain), 'auth.scope.project.domain');
    const id = str(project.id);
    const name = str(project.name);
    if (!id && !name) throw invalidField('auth.scope.project', 'give its id or name', 'PROJECT_REQUIRED');
    let q = db.selectFrom('accounts').select(['uuid', 'name']);
    q = id
      ? q.where('uuid', '=', /^[0-9a-f-]{36}$/i.test(id) ? id : '00000000-0000-0000-0000-000000000000')
      : q.where('name', '=', name!);
    const row = await q.executeTakeFirst();
    if (!row) throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong project, user or password');
    return row.name;
  }
  let q = db
    .selectFrom('users as u')
    .innerJoin('accounts as a', 'a.uuid', 'u.accountUuid')
    .select(['a.name']);
  q = userId
    ? q.where(
        'u.uuid',
        '=',
        /^[0-9a-f-]{36}$/i.test(userId) ? userId : '00000000-0000-0000-0000-000000000000',
      )
    : q.where('u.name', '=', userName!);
  const rows = await q.limit(2).execute();
  if (rows.length === 1) return rows[0]!.name;
  if (rows.length > 1)
    throw invalidField(
      'auth.scope',
      `several projects have a user ${userName}; scope the token to one`,
      'PROJECT_REQUIRED',
    );
  throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong project, user or password');
}

export interface Issued {
  token: string;
  body: Obj;
}

/** the token body Keystone answers (issue and validate share it) */
export async function tokenBody(
  db: Db,
  request: FastifyRequest,
  info: Pick<SessionInfo, 'userUuid' | 'expiresAt'> & { issuedAt?: Date },
  scope: TokenScope,
  auditId: string,
): Promise<Obj> {
  const who = await whoIs(db, { userUuid: info.userUuid });
  const token: Obj = {
    methods: ['password'],
    user: { id: who.userUuid, name: who.userName, domain: DEFAULT_DOMAIN, password_expires_at: null },
    audit_ids: [auditId],
    expires_at: info.expiresAt.toISOString(),
    issued_at: (info.issuedAt ?? new Date()).toISOString(),
  };
  if (scope.kind === 'project') {
    token.project = { id: who.accountUuid, name: who.accountName, domain: DEFAULT_DOMAIN };
    token.is_domain = false;
  } else if (scope.kind === 'domain') token.domain = DEFAULT_DOMAIN;
  if (scope.kind !== 'unscoped') {
    token.roles = rolesOf(who.isAdmin);
    token.catalog = catalogFor(serviceUrls(request), who.accountUuid);
  }
  return { token };
}

/** POST /v3/auth/tokens: the password method (and the token method to rescope one's own token) */
export class TokenIssuer {
  private readonly throttle = new LoginThrottle();

  constructor(
    private readonly db: Db,
    private readonly sessions: Sessions,
  ) {}

  async issue(request: FastifyRequest): Promise<Issued> {
    const auth = obj(obj(request.body)?.auth);
    const identity = obj(auth?.identity);
    if (!auth || !identity) throw invalidField('auth.identity', 'required', 'AUTH_REQUIRED');
    const methods = Array.isArray(identity.methods) ? identity.methods : [];
    const scopeBody = obj(auth.scope);
    const project = obj(scopeBody?.project);
    if (scopeBody?.system)
      throw new CloudError(
        'Unauthenticated',
        'SYSTEM_SCOPE_UNSUPPORTED',
        'auth.scope.system: system scope is not offered; scope to a project',
      );
    checkDomain(obj(scopeBody?.domain), 'auth.scope.domain');
    const scope: TokenScope = { kind: project ? 'project' : scopeBody?.domain ? 'domain' : 'unscoped' };
    if (methods.includes('password')) {
      const user = obj(obj(identity.password)?.user);
      const userName = str(user?.name);
      const userId = str(user?.id);
      const password = typeof user?.password === 'string' ? user.password : undefined;
      if (!user || (!userName && !userId) || password === undefined)
        throw invalidField(
          'auth.identity.password.user',
          'give name (with domain) or id, and password',
          'AUTH_REQUIRED',
        );
      checkDomain(obj(user.domain), 'auth.identity.password.user.domain');
      const accountName = await accountForLogin(this.db, userName, userId, project);
      const name = userName ?? (await this.userName(userId!));
      const key = JSON.stringify([accountName, name]);
      this.throttle.check(key, request.ip);
      let session: Awaited<ReturnType<Sessions['login']>>;
      try {
        session = await this.sessions.login(accountName, name, password);
      } catch (err) {
        if (err instanceof CloudError && err.code === 'LOGIN_FAILED') this.throttle.failed(key, request.ip);
        throw err;
      }
      this.throttle.succeeded(key);
      const info = await this.sessions.validate(session.token);
      return { token: session.token, body: await tokenBody(this.db, request, info, scope, info.sessionUuid) };
    }
    if (methods.includes('application_credential')) {
      // the credential's own project: a scope, if given, must be that one
      const given = obj(identity.application_credential) ?? {};
      const key = JSON.stringify(['application_credential', given.id ?? given.name ?? '']);
      this.throttle.check(key, request.ip);
      let who: Awaited<ReturnType<typeof checkAppCredential>>;
      try {
        who = await checkAppCredential(this.db, given);
      } catch (err) {
        if (err instanceof CloudError && err.code === 'LOGIN_FAILED') this.throttle.failed(key, request.ip);
        throw err;
      }
      this.throttle.succeeded(key);
      if (project && ((str(project.id) && str(project.id) !== who.accountUuid) || str(project.name)))
        throw new CloudError(
          'Unauthenticated',
          'PROJECT_NOT_YOURS',
          'an application credential is scoped to its own project',
        );
      const session = await this.sessions.open(who);
      const info = await this.sessions.validate(session.token);
      const body = await tokenBody(this.db, request, info, { kind: 'project' }, info.sessionUuid);
      (body.token as Record<string, unknown>).methods = ['application_credential'];
      return { token: session.token, body };
    }
    if (methods.includes('token')) {
      // rescoping: the same session, answered with the scope asked for (a user has one project)
      const given = str(obj(identity.token)?.id);
      if (!given) throw invalidField('auth.identity.token.id', 'required', 'AUTH_REQUIRED');
      const info = await this.sessions.validate(given);
      if (project) {
        const id = str(project.id);
        const name = str(project.name);
        const who = await whoIs(this.db, info);
        if ((id && id !== who.accountUuid) || (name && name !== who.accountName))
          throw new CloudError(
            'Unauthenticated',
            'PROJECT_NOT_YOURS',
            'auth.scope.project: a user may only scope to its own project',
          );
      }
      return { token: given, body: await tokenBody(this.db, request, info, scope, info.sessionUuid) };
    }
    throw new CloudError(
      'Unauthenticated',
      'AUTH_METHOD_UNSUPPORTED',
      'auth.identity.methods: use password, application_credential or token',
    );
  }

  private async userName(userUuid: string): Promise<string> {
    if (!/^[0-9a-f-]{36}$/i.test(userUuid))
      throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong project, user or password');
    const row = await this.db
      .selectFrom('users')
      .select('name')
      .where('uuid', '=', userUuid)
      .executeTakeFirst();
    if (!row) throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong project, user or password');
    return row.name;
  }
}
