/**
 * The storage side of image.upload's last leg: a flattened qcow2 file sent to a backup storage
 * agent (`PUT <backupStorageUrl>/v1/images/<uuid>`, see backup-storage/routes.ts), streamed from
 * disk with its sha256 so the receiver can check it. `HEAD` first: an image already there is an
 * idempotent success (the contract's rule for image.upload).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { CloudError } from '../../kernel/errors.js';
import { SHA256_HEADER, VIRTUAL_SIZE_HEADER } from './fetch-image.js';

export interface StoredImage {
  size: number;
  actualSize: number;
  sha256?: string;
}

export function imageUrl(backupStorageUrl: string, imageUuid: string): URL {
  let base: URL;
  try {
    base = new URL(backupStorageUrl);
  } catch {
    throw new CloudError('Invalid', 'BACKUP_STORAGE_URL_INVALID', `${backupStorageUrl} is not a URL`, {
      details: { field: 'backupStorageUrl', value: backupStorageUrl },
    });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new CloudError(
      'Invalid',
      'BACKUP_STORAGE_URL_INVALID',
      `${backupStorageUrl}: a backup storage agent is reached over http(s)`,
      { details: { field: 'backupStorageUrl', value: backupStorageUrl } },
    );
  }
  return new URL(`${base.pathname.replace(/\/+$/, '')}/v1/images/${imageUuid}`, base);
}

function send(
  url: URL,
  method: 'HEAD' | 'PUT',
  headers: Record<string, string | number>,
  file?: string,
): Promise<{ res: IncomingMessage; body: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (e) =>
      reject(
        new CloudError('Unavailable', 'BACKUP_STORAGE_UNREACHABLE', `${method} ${url.href}: ${e.message}`, {
          details: { url: url.href },
          retryable: true,
        }),
      ),
    );
    if (file === undefined) req.end();
    else pipeline(createReadStream(file), req).catch(reject);
  });
}

function refused(method: string, url: URL, status: number, body: string): CloudError {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } };
    if (parsed.error?.message) message = parsed.error.message;
  } catch {}
  return new CloudError(
    status === 401 ? 'Unauthenticated' : status >= 500 ? 'Unavailable' : 'Invalid',
    'BACKUP_STORAGE_REFUSED',
    `${method} ${url.href} answered ${status}: ${message}`,
    { details: { url: url.href, status }, retryable: status >= 500 },
  );
}

/** The image's sizes when the backup storage holds it already, else undefined. */
export async function headImage(url: URL, authorization?: string): Promise<StoredImage | undefined> {
  const { res, body } = await send(url, 'HEAD', authorization ? { authorization } : {});
  if (res.statusCode === 404) return undefined;
  if (res.statusCode !== 200) throw refused('HEAD', url, res.statusCode ?? 0, body);
  const size = Number(res.headers[VIRTUAL_SIZE_HEADER]);
  const actualSize = Number(res.headers['content-length']);
  if (!(size > 0 && actualSize > 0)) return undefined;
  const sha = res.headers[SHA256_HEADER];
  return { size, actualSize, ...(typeof sha === 'string' ? { sha256: sha } : {}) };
}

/** PUTs the file; answers what the backup storage stored. */
export async function putImage(
  url: URL,
  file: string,
  sha256: string,
  authorization?: string,
): Promise<StoredImage> {
  const { size } = await stat(file);
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'content-length': size,
    [SHA256_HEADER]: sha256,
  };
  if (authorization) headers.authorization = authorization;
  const { res, body } = await send(url, 'PUT', headers, file);
  if (res.statusCode !== 200 && res.statusCode !== 201) throw refused('PUT', url, res.statusCode ?? 0, body);
  const stored = JSON.parse(body) as StoredImage;
  return { size: stored.size, actualSize: stored.actualSize, sha256: stored.sha256 ?? sha256 };
}
