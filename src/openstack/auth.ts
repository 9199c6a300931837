/**
 * Tokens on the OpenStack façade: `X-Auth-Token` carries the same session token as the native
 * API's bearer (Keystone issues it from the same accounts and passwords). Every route of a scope
 * that calls `requireToken` resolves the caller from it; unauthenticated routes (version
 * discovery, `POST /v3/auth/tokens`) are listed by the scope.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOfSession } from '../api/auth.js';
import { CloudError } from '../kernel/errors.js';
import type { Sessions } from '../resources/identity/session/sessions.js';

export function authToken(request: FastifyRequest): string | undefined {
  const token = request.headers['x-auth-token'];
  return typeof token === 'string' && token.length > 0 ? token : undefined;
}

/**
 * Adds the token check to a scope. `isPublic(path, method)` says which of its routes need none
 * (the path is the full URL path, without the query).
 */
export function requireToken(
  scope: FastifyInstance,
  sessions: Sessions,
  isPublic: (path: string, method: string) => boolean = () => false,
): void {
  scope.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? request.url;
    if (isPublic(path, request.method)) return;
    const token = authToken(request);
    if (!token)
      throw new CloudError(
        'Unauthenticated',
        'TOKEN_MISSING',
        'send X-Auth-Token (get one from POST /identity/v3/auth/tokens)',
      );
    request.caller = callerOfSession(await sessions.validate(token), request.id);
  });
}
