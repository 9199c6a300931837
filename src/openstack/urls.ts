/**
 * This node's own URLs as the client reached it: behind HAProxy the request's Host is the
 * proxy's, so `X-Forwarded-Proto`/`X-Forwarded-Host` (the first of a list) win over Host. The
 * Keystone catalog, version documents and `links` are built from it, so a client that reached
 * us through a VIP keeps talking to the VIP.
 */
import type { FastifyRequest } from 'fastify';
import { OPENSTACK_PREFIX } from './deps.js';

const first = (v: string | string[] | undefined): string | undefined => {
  const s = Array.isArray(v) ? v[0] : v;
  const f = s?.split(',')[0]?.trim();
  return f ? f : undefined;
};

/** `http://host:port` the client used */
export function baseUrl(request: FastifyRequest): string {
  const proto = first(request.headers['x-forwarded-proto']) ?? 'http';
  const host = first(request.headers['x-forwarded-host']) ?? request.headers.host ?? 'localhost';
  const safeProto = proto === 'https' ? 'https' : 'http';
  return `${safeProto}://${host}`;
}

/** where each service is reached (the catalog's endpoints) */
export function serviceUrls(request: FastifyRequest): {
  identity: string;
  compute: string;
  image: string;
  network: string;
  volume: string;
} {
  const b = baseUrl(request);
  return {
    identity: `${b}${OPENSTACK_PREFIX.identity}/v3`,
    compute: `${b}${OPENSTACK_PREFIX.compute}/v2.1`,
    image: `${b}${OPENSTACK_PREFIX.image}`,
    network: `${b}${OPENSTACK_PREFIX.network}`,
    volume: `${b}${OPENSTACK_PREFIX.volume}/v3`,
  };
}
