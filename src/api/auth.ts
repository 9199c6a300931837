/**
 * Authentication: `POST /v1/auth/login` trades account (+ user) and password for a bearer token;
 * every other /v1 route needs `Authorization: Bearer <token>`. The resolved Caller is attached
 * to the request; services decide visibility from it alone. Failed logins are throttled
 * (login-throttle.ts). Revocations committed on this node (a password change, a deleted user or
 * account) evict the cached validations of the sessions they revoked at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { LoginBody, LoginReply, WhoAmI } from '../contract/auth.js';
import type { EventBus } from '../engine/events.js';
import type { Caller } from '../kernel/caller.js';
import { CloudError } from '../kernel/errors.js';
import type { SessionInfo, Sessions } from '../resources/identity/session/sessions.js';
import { LoginThrottle } from './login-throttle.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/**
 * Routes anyone may call without a bearer token (the OpenAPI document says `security: []` on
 * each); the console WebSocket has a token of its own (console-routes.ts).
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  '/v1/auth/login',
  '/v1/health',
  '/v1/ready',
  '/v1/openapi.json',
  '/metrics',
  '/v1/console',
]);

function isPublic(url: string): boolean {
  const path = url.split('?')[0] ?? url;
  return (
    PUBLIC_PATHS.has(path) || path === '/v1/docs' || path.startsWith('/v1/docs/') || !path.startsWith('/v1/')
  );
}

export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller)
    throw new CloudError(
      'Unauthenticated',
      'TOKEN_MISSING',
      'send Authorization: Bearer <token> (get one from POST /v1/auth/login)',
    );
  return request.caller;
}

/** the caller a validated session token makes (this API's bearer, the OpenStack façade's X-Auth-Token) */
export function callerOfSession(info: SessionInfo, requestId: string): Caller {
  return {
    accountUuid: info.accountUuid,
    userUuid: info.userUuid,
    isAdmin: info.isAdmin,
    requestId,
    sessionUuid: info.sessionUuid,
  };
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

/** Events after which sessions are no longer valid: which sessions to evict from the cache. */
function revokedBy(e: { type: string; resourceUuid: string; data: Record<string, unknown> }) {
  switch (e.type) {
    case 'account.deleted':
      return { accountUuid: e.resourceUuid };
    case 'user.deleted':
      return { userUuid: e.resourceUuid };
    case 'user.sessions.revoked':
      return {
        userUuid: e.resourceUuid,
        ...(typeof e.data.except === 'string' ? { except: e.data.except } : {}),
      };
    default:
      return undefined;
  }
}

export function registerAuth(
  app: FastifyInstance,
  sessions: Sessions,
  events?: EventBus,
  throttle = new LoginThrottle(),
): void {
  if (events) {
    const unsubscribe = events.subscribe((e) => {
      const who = revokedBy(e);
      if (who) sessions.evict(who);
    });
    app.addHook('onClose', async () => unsubscribe());
  }
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (request) => {
    if (isPublic(request.url)) return;
    const token = bearer(request);
    if (!token)
      throw new CloudError(
        'Unauthenticated',
        'TOKEN_MISSING',
        'send Authorization: Bearer <token> (get one from POST /v1/auth/login)',
      );
    request.caller = callerOfSession(await sessions.validate(token), request.id);
  });

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        operationId: 'login',
        summary: 'log in: returns a bearer token',
        description:
          'After 5 failed logins within 60 s for one account/user, or 20 from one address, answers 429 LOGIN_THROTTLED with Retry-After.',
        body: LoginBody,
        response: { 200: LoginReply },
      },
    },
    async (request) => {
      const body = request.body as { account: string; user?: string; password: string };
      const name = JSON.stringify([body.account, body.user ?? body.account]);
      throttle.check(name, request.ip);
      try {
        const session = await sessions.login(body.account, body.user, body.password);
        throttle.succeeded(name);
        return session;
      } catch (err) {
        if (err instanceof CloudError && err.code === 'LOGIN_FAILED') throttle.failed(name, request.ip);
        throw err;
      }
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      schema: {
        tags: ['auth'],
        operationId: 'logout',
        summary: 'revoke the token of this request',
        response: { 204: Type.Null({ description: 'the token is revoked' }) },
      },
    },
    async (request, reply) => {
      callerOf(request);
      await sessions.logout(bearer(request)!);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/auth/whoami',
    {
      schema: {
        tags: ['auth'],
        operationId: 'whoami',
        summary: 'the account and user of this token',
        response: { 200: WhoAmI },
      },
    },
    async (request) => {
      const c = callerOf(request);
      return { accountUuid: c.accountUuid, userUuid: c.userUuid, isAdmin: c.isAdmin };
    },
  );
}
