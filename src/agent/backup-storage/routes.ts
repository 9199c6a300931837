/**
 * The backup storage's HTTP routes for image bytes (not commands: they stream files):
 *
 *   GET  /v1/images/<uuid>   the image file; one `Range: bytes=a-b` range is honoured (206)
 *   HEAD /v1/images/<uuid>   its headers only (image.upload asks first: already there = done)
 *   PUT  /v1/images/<uuid>   store an upload (temp file, checked, renamed); an `x-nimbus-sha256`
 *                            header is checked against the bytes received
 *
 * GET and HEAD answer `x-nimbus-sha256` (hosts check their copy against it) and
 * `x-nimbus-virtual-size`. Every route needs `Authorization: Bearer <secret>`, the agent's secret.
 * The server calls the function for each request; it answers false (and touches nothing) when
 * the path is not one of these, so the server goes on routing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CloudError, STATUS_BY_REASON, toErrorBody } from '../../kernel/errors.js';
import { checkSha256Field, SHA256_HEADER, VIRTUAL_SIZE_HEADER } from '../storage/fetch-image.js';
import { ImageStore } from './image-store.js';

export interface BackupStorageRouteOptions {
  dir: string;
  secret: string;
}

const IMAGE_PATH = /^\/v1\/images\/([^/?]+)(?:\?.*)?$/;

const sha = (text: string) => createHash('sha256').update(text).digest();

function authorized(header: string | undefined, secret: string): boolean {
  const given = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  return timingSafeEqual(sha(given), sha(secret)) && given.length > 0;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof CloudError) sendJson(res, err.status, { error: err.toBody() });
  else sendJson(res, STATUS_BY_REASON.Internal, { error: { ...toErrorBody(err), code: 'AGENT_INTERNAL' } });
}

/** The one range of a `Range: bytes=…` header, clipped to the file; undefined = whole file. */
export function parseRange(
  header: string | undefined,
  length: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // several ranges or nonsense: send it all
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
  if (start >= length || end < start) return 'unsatisfiable';
  return { start, end };
}

async function serve(
  store: ImageStore,
  uuid: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const image = await store.find(uuid);
  if (!image) throw new CloudError('NotFound', 'IMAGE_NOT_ON_BACKUP_STORAGE', `no image ${uuid} here`);
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    [SHA256_HEADER]: image.sha256,
    [VIRTUAL_SIZE_HEADER]: image.size,
  };
  const range = parseRange(req.headers.range, image.length);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${image.length}` });
    res.end();
    return;
  }
  if (range) {
    // a part of the file does not have the whole file's digest: the header would mislead
    delete headers[SHA256_HEADER];
    res.writeHead(206, {
      ...headers,
      'content-length': range.end - range.start + 1,
      'content-range': `bytes ${range.start}-${range.end}/${image.length}`,
    });
  } else {
    res.writeHead(200, { ...headers, 'content-length': image.length });
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(createReadStream(image.path, range ? { start: range.start, end: range.end } : {}), res);
}

async function receive(
  store: ImageStore,
  uuid: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const length = Number(req.headers['content-length']);
  if (Number.isSafeInteger(length) && length > 0) {
    // refused before a byte is written, rather than filling the disk and failing half-way
    await store.ensureDir();
    const fs = await statfs(store.dir);
    if (length > fs.bavail * fs.bsize) {
      throw new CloudError(
        'Conflict',
        'BACKUP_STORAGE_FULL',
        `upload of ${uuid}: ${length} bytes do not fit`,
        {
          details: { needed: length, available: fs.bavail * fs.bsize },
        },
      );
    }
  }
  const header = req.headers[SHA256_HEADER];
  const expected = checkSha256Field(typeof header === 'string' ? header : undefined, SHA256_HEADER);
  const part = await store.part(uuid);
  try {
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(req, tap, createWriteStream(part));
    const digest = hash.digest('hex');
    if (expected !== undefined && digest !== expected) {
      throw new CloudError(
        'Invalid',
        'IMAGE_CHECKSUM_MISMATCH',
        `upload of ${uuid}: sha256 ${digest} is not ${expected}`,
        {
          details: { expected, actual: digest },
        },
      );
    }
    const stored = await store.publish(uuid, part, digest, `upload of ${uuid}`);
    sendJson(res, 200, { size: stored.size, actualSize: stored.actualSize, sha256: stored.sha256 });
  } finally {
    await rm(part, { force: true });
  }
}

/** The route function the agent's HTTP server calls first: true = it took the request. */
export function backupStorageRoutes(
  opts: BackupStorageRouteOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const store = new ImageStore(opts.dir);
  return (req, res) => {
    const match = IMAGE_PATH.exec(req.url ?? '');
    if (!match) return false;
    const fail = (err: unknown) => {
      req.resume();
      sendError(res, err);
    };
    if (!authorized(req.headers.authorization, opts.secret)) {
      fail(new CloudError('Unauthenticated', 'AGENT_UNAUTHENTICATED', 'missing or wrong bearer secret'));
      return true;
    }
    const uuid = decodeURIComponent(match[1] ?? '');
    let work: Promise<void>;
    try {
      store.pathOf(uuid); // refuses a name that is not a plain uuid
      if (req.method === 'GET' || req.method === 'HEAD') work = serve(store, uuid, req, res);
      else if (req.method === 'PUT') work = receive(store, uuid, req, res);
      else
        throw new CloudError(
          'Invalid',
          'AGENT_METHOD_NOT_ALLOWED',
          `${req.method} is not allowed on /v1/images`,
        );
    } catch (err) {
      fail(err);
      return true;
    }
    work.catch(fail);
    return true;
  };
}
