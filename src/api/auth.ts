/**
 * Authentication: `POST /v1/auth/login` trades account (+ user) and password for a bearer token;
 * every other /v1 route needs `Authorization: Bearer <token>`. The resolved Caller is attached
 * to the request; services decide visibility from it alone.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Caller } from '../kernel/caller.js';
import { CloudError } from '../kernel/errors.js';
import type { Sessions } from '../resources/identity/session/sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/** Routes anyone may call without a token. */
const PUBLIC = new Set(['/v1/auth/login', '/v1/health', '/v1/ready', '/v1/openapi.json', '/metrics']);

function isPublic(url: string): boolean {
  const path = url.split('?')[0] ?? url;
  return PUBLIC.has(path) || path === '/v1/docs' || path.startsWith('/v1/docs/') || !path.startsWith('/v1/');
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

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

const LoginBody = Type.Object(
  {
    account: Type.String({ minLength: 1, maxLength: 255 }),
    user: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'user of the account (default: the user named like the account)',
      }),
    ),
    password: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);
const LoginReply = Type.Object({
  token: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  accountUuid: Type.String(),
  userUuid: Type.String(),
});

export function registerAuth(app: FastifyInstance, sessions: Sessions): void {
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
    const info = await sessions.validate(token);
    request.caller = {
      accountUuid: info.accountUuid,
      userUuid: info.userUuid,
      isAdmin: info.isAdmin,
      requestId: request.id,
    };
  });

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'log in: returns a bearer token',
        body: LoginBody,
        response: { 200: LoginReply },
      },
    },
    async (request) => {
      const body = request.body as { account: string; user?: string; password: string };
      return sessions.login(body.account, body.user, body.password);
    },
  );

  app.post(
    '/v1/auth/logout',
    { schema: { tags: ['auth'], summary: 'revoke the token of this request' } },
    async (request, reply) => {
      callerOf(request);
      await sessions.logout(bearer(request)!);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/auth/whoami',
    { schema: { tags: ['auth'], summary: 'the account and user of this token' } },
    async (request) => {
      const c = callerOf(request);
      return { accountUuid: c.accountUuid, userUuid: c.userUuid, isAdmin: c.isAdmin };
    },
  );
}
