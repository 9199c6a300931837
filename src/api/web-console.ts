/**
 * Serves the web console (web/, built by scripts/build-web.mjs into dist/web) at `/`, beside the API.
 *
 * - `/assets/*` are content-hashed names: cached for a year (`immutable`); a new build has new names.
 * - `index.html` is never cached (`no-cache`), so a browser picks up a new build on its next load.
 * - Client routes (`/vms`, `/vms/<uuid>`, `/login`) get index.html: the console's router draws
 *   them. Only a browser navigation gets it (a GET whose Accept includes text/html) and never a
 *   path of the API (`/v1/…`), `/metrics` or an asset: an API client or a missing asset still gets
 *   the API's JSON 404 (through the not-found handler).
 * - The files are read into memory once at start (a few hundred KiB), and gzip-compressed on first
 *   use when the client accepts it. No token is needed (auth.ts treats every path outside /v1 as
 *   public): the console's data comes from the API, which asks for one.
 * Without a build (dist/web missing) `/` answers the JSON 404 like any unknown route.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
};

/**
 * What the page may load: only this origin's scripts (no inline script, so an injected one does
 * not run); inline styles are allowed because Mantine sets CSS variables in style attributes.
 */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/** Paths the console never answers with index.html: the API's own, and anything with a file extension. */
const NOT_CLIENT_ROUTE = /^\/(v1(\/|$)|metrics$|assets\/)|\.[A-Za-z0-9]+$/;

interface StaticFile {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
  cache: string;
}

export const WEB_DIST = fileURLToPath(new URL('../../web/', import.meta.url));

function load(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (!name.startsWith('.')) {
        const body = readFileSync(path);
        const url = `/${relative(dir, path).split('\\').join('/')}`;
        files.set(url, {
          body,
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
          cache: url.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      }
    }
  };
  walk(dir);
  return files;
}

function send(request: FastifyRequest, reply: FastifyReply, f: StaticFile) {
  void reply
    .header('content-type', f.type)
    .header('cache-control', f.cache)
    .header('etag', f.etag)
    .header('x-content-type-options', 'nosniff')
    .header('vary', 'accept-encoding');
  if (f.type.startsWith('text/html')) void reply.header('content-security-policy', CSP);
  if (request.headers['if-none-match'] === f.etag) return reply.code(304).send();
  const compressible = f.body.length > 1024 && !f.type.startsWith('image/png');
  if (compressible && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
    f.gzip ??= gzipSync(f.body);
    return reply.header('content-encoding', 'gzip').send(f.gzip);
  }
  return reply.send(f.body);
}

export function registerWebConsole(app: FastifyInstance, dir = WEB_DIST): void {
  if (!existsSync(join(dir, 'index.html'))) return;
  const files = load(dir);
  const index = files.get('/index.html')!;
  const serve = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = decodeURIComponentSafe(request.url.split('?')[0] ?? '/');
    const file = path === '/' ? index : files.get(path);
    if (file) return send(request, reply, file);
    const wantsHtml = String(request.headers.accept ?? '').includes('text/html');
    if (wantsHtml && !NOT_CLIENT_ROUTE.test(path)) return send(request, reply, index);
    return reply.callNotFound();
  };
  // The console's own shapes only (`/vms`, `/vms/<uuid>`, `/login`, `/favicon.svg`, `/assets/…`), not
  // a catch-all `/*`: a catch-all would also take what the router refuses, such as an over-long
  // path parameter of the API (414), and turn it into a 404. The API's static paths always win.
  for (const path of ['/', '/assets/*', '/:page', '/:page/:id'])
    app.get(path, { schema: { hide: true } }, serve);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
