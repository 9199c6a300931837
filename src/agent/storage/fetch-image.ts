/**
 * Copies an image from a URL into a local file, hashing it on the way (sha256), never holding it in
 * memory. Sources: http(s) (a backup storage's `GET /v1/images/<uuid>`, or any web server), file://
 * and absolute paths (a file on this host). The destination is written as given: callers pass a
 * temporary name and rename it when the copy is complete and checked, so a final name never holds
 * a partial file. A source that announces its digest (`x-nimbus-sha256`, our backup storage does)
 * is checked against it, as is the caller's expected digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { CloudError } from '../../kernel/errors.js';

export const SHA256_HEADER = 'x-nimbus-sha256';
export const VIRTUAL_SIZE_HEADER = 'x-nimbus-virtual-size';

export interface FetchOptions {
  /** the Authorization header value for this URL (only ever sent to http(s) sources) */
  authorization?: string;
  /** hex sha256 the content must have */
  sha256?: string;
}

export interface Fetched {
  bytes: number;
  sha256: string;
}

const SHA256_RE = /^[0-9a-f]{64}$/;

export function checkSha256Field(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (!SHA256_RE.test(v)) {
    throw new CloudError('Invalid', 'IMAGE_CHECKSUM_INVALID', `${field} must be 64 hex digits (a sha256)`, {
      details: { field, value },
    });
  }
  return v;
}

/** Where an image URL points: a remote http(s) resource or a path on this host. */
export type ImageSource = { kind: 'http'; url: string } | { kind: 'file'; path: string };

export function parseImageSource(url: string): ImageSource {
  if (url.startsWith('/')) return { kind: 'file', path: url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CloudError('Invalid', 'IMAGE_URL_INVALID', `${url} is neither a URL nor an absolute path`, {
      details: { url },
    });
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return { kind: 'http', url };
  if (parsed.protocol === 'file:') return { kind: 'file', path: fileURLToPath(parsed) };
  throw new CloudError('Invalid', 'IMAGE_URL_INVALID', `${url}: only http, https and file URLs are fetched`, {
    details: { url, protocol: parsed.protocol },
  });
}

async function open(
  source: ImageSource,
  opts: FetchOptions,
): Promise<{ body: Readable; announced?: string }> {
  if (source.kind === 'file') {
    const body = createReadStream(source.path);
    await new Promise<void>((resolve, reject) => {
      body.once('open', () => resolve());
      body.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new CloudError(
            e.code === 'ENOENT' ? 'NotFound' : 'Unavailable',
            'IMAGE_SOURCE_UNREADABLE',
            `cannot read ${source.path}: ${e.message}`,
            { details: { path: source.path } },
          ),
        ),
      );
    });
    return { body };
  }
  let res: Response;
  try {
    res = await fetch(
      source.url,
      opts.authorization ? { headers: { authorization: opts.authorization } } : {},
    );
  } catch (e) {
    throw new CloudError(
      'Unavailable',
      'IMAGE_SOURCE_UNREACHABLE',
      `cannot reach ${source.url}: ${String(e)}`,
      {
        details: { url: source.url },
        retryable: true,
      },
    );
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new CloudError(
      res.status === 404 ? 'NotFound' : 'Unavailable',
      'IMAGE_SOURCE_UNREADABLE',
      `GET ${source.url} answered ${res.status}`,
      { details: { url: source.url, status: res.status }, retryable: res.status >= 500 },
    );
  }
  const announced = res.headers.get(SHA256_HEADER) ?? undefined;
  return {
    body: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
    ...(announced ? { announced: announced.toLowerCase() } : {}),
  };
}

/**
 * Streams `url` into `dest` (created or truncated), computing its sha256. Rejects with
 * IMAGE_CHECKSUM_MISMATCH when a digest was expected or announced and the bytes differ; the caller
 * removes `dest` on any rejection.
 */
export async function fetchToFile(url: string, dest: string, opts: FetchOptions = {}): Promise<Fetched> {
  const source = parseImageSource(url);
  const { body, announced } = await open(source, opts);
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, tap, createWriteStream(dest));
  } catch (e) {
    throw new CloudError('Unavailable', 'IMAGE_DOWNLOAD_FAILED', `copying ${url} failed: ${String(e)}`, {
      details: { url },
      retryable: true,
    });
  }
  const sha256 = hash.digest('hex');
  for (const [expected, who] of [
    [opts.sha256, 'the request'],
    [announced, 'the source'],
  ] as const) {
    if (expected !== undefined && expected !== sha256) {
      throw new CloudError(
        'Invalid',
        'IMAGE_CHECKSUM_MISMATCH',
        `${url}: sha256 ${sha256} differs from ${expected} given by ${who}`,
        { details: { url, expected, actual: sha256, bytes } },
      );
    }
  }
  return { bytes, sha256 };
}

/** sha256 of a local file (after a format conversion changed the bytes). */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
