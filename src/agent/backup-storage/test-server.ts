/**
 * Tests only: a backup storage reachable over HTTP on 127.0.0.1, serving the image routes
 * (routes.ts) and `POST /v1/commands/bs.*`. It stands in for the agent's server (server.ts) until
 * that mounts the image routes; it is not used by the agent program. Also a plain file server
 * that counts its requests (the "internet" image source of the tests).
 */
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CloudError } from '../../kernel/errors.js';
import { backupStorageHandlers } from './index.js';
import { backupStorageRoutes } from './routes.js';

export interface Running {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<Running> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function serveBackupStorage(opts: { dir: string; secret: string }): Promise<Running> {
  const routes = backupStorageRoutes(opts);
  const handlers = backupStorageHandlers({ dir: opts.dir }) as unknown as Record<
    string,
    (r: unknown) => Promise<unknown>
  >;
  const server = createServer((req, res) => {
    if (routes(req, res)) return;
    const command = /^\/v1\/commands\/(bs\.[a-z-]+)$/.exec(req.url ?? '')?.[1];
    const handler = command ? handlers[command] : undefined;
    if (req.headers.authorization !== `Bearer ${opts.secret}` || !handler || req.method !== 'POST') {
      req.resume();
      res.writeHead(handler ? 401 : 404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handler(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'))
        .then((body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)))
        .catch((err: unknown) => {
          const e = err instanceof CloudError ? err : undefined;
          res.writeHead(e?.status ?? 500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: e ? e.toBody() : { message: String(err) } }));
        });
    });
  });
  return listen(server);
}

/** Serves the files of `dir` (GET /<name>), counting requests per name; `delayMs` slows each answer. */
export async function serveFiles(
  dir: string,
  opts: { delayMs?: number } = {},
): Promise<Running & { hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    hits.set(name, (hits.get(name) ?? 0) + 1);
    const path = join(dir, name);
    setTimeout(() => {
      stat(path)
        .then(() => readFile(path))
        .then((body) => res.writeHead(200, { 'content-length': body.length }).end(body))
        .catch(() => res.writeHead(404).end());
    }, opts.delayMs ?? 0);
  });
  return { ...(await listen(server)), hits };
}
