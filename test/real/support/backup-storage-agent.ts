/**
 * Test-only: a backup storage that really holds image files, reachable by the hosts on the
 * underlay. It is the agent's own backup-storage part (src/agent/backup-storage/: the bs.*
 * handlers and the GET|HEAD|PUT /v1/images routes, bearer-authenticated) in an HTTP server of
 * this process: what `nimbus-agent --backup-storage-dir` mounts, with a secret of its own (not
 * the hosts' agents'), so the hosts must use the one the management node sends.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { backupStorageHandlers, backupStorageRoutes } from '../../../src/agent/backup-storage/index.js';
import { bearerMatches } from '../../../src/agent/server.js';
import { CloudError } from '../../../src/kernel/errors.js';

export async function serveBackupStorage(opts: {
  dir: string;
  secret: string;
  host: string;
}): Promise<{ url: string; server: Server }> {
  const routes = backupStorageRoutes({ dir: opts.dir, secret: opts.secret });
  const handlers = backupStorageHandlers({ dir: opts.dir }) as unknown as Record<
    string,
    ((r: unknown) => Promise<unknown>) | undefined
  >;
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    if (routes(req, res)) return;
    if (!bearerMatches(req.headers.authorization, opts.secret)) {
      req.resume();
      json(res, 401, { error: { code: 'AGENT_UNAUTHENTICATED', reason: 'Unauthenticated', message: 'no' } });
      return;
    }
    const command = /^\/v1\/commands\/(bs\.[a-z-]+)$/.exec(req.url ?? '')?.[1];
    const handler = command ? handlers[command] : undefined;
    if (!handler || req.method !== 'POST') {
      req.resume();
      json(res, 404, {
        error: { code: 'AGENT_COMMAND_UNKNOWN', reason: 'NotFound', message: String(req.url) },
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handler(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'))
        .then((body) => json(res, 200, body))
        .catch((err: unknown) => {
          const e = err instanceof CloudError ? err : undefined;
          json(res, e?.status ?? 500, {
            error: e ? e.toBody() : { code: 'AGENT_INTERNAL', reason: 'Internal', message: String(err) },
          });
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, opts.host, r));
  return { url: `http://${opts.host}:${(server.address() as AddressInfo).port}`, server };
}
