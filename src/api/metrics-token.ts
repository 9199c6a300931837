/**
 * The operator's optional guard on /metrics (`--metrics-token` / NIMBUS_METRICS_TOKEN): when a
 * token is configured, a scrape must send `Authorization: Bearer <token>`, else 401. The route
 * stays outside account auth (no session lookup, no database), so a scrape is cheap under load.
 * Compared in constant time over digests, so neither the token nor its length leaks by timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CloudError } from '../kernel/errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function checkMetricsToken(request: FastifyRequest, token: string | undefined): void {
  if (!token) return;
  const header = request.headers.authorization ?? '';
  const [scheme, given] = header.split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !given)
    throw new CloudError(
      'Unauthenticated',
      'METRICS_TOKEN_MISSING',
      'this node requires Authorization: Bearer <metrics token> on /metrics',
    );
  if (!timingSafeEqual(digest(given), digest(token)))
    throw new CloudError('Unauthenticated', 'METRICS_TOKEN_INVALID', 'the metrics token is not valid');
}
