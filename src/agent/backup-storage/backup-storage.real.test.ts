// The backup storage part with real files and qemu-img: bs.connect's real capacity, downloads
// from an HTTP URL, a file path and a file:// URL (raw converted to qcow2), idempotent re-downloads,
// a failed download leaving nothing, GET (whole and Range) / HEAD / PUT of image files with their
// digests, refusals (wrong secret, bad digest, backing file), delete. Skipped without root or qemu-img.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CloudError } from '../../kernel/errors.js';
import { type BackupStorageHandlers, backupStorageHandlers } from './index.js';
import { type Running, serveBackupStorage, serveFiles } from './test-server.js';

const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? 'needs root'
  : !hasQemuImg
    ? 'qemu-img is not installed (apt-get install qemu-utils)'
    : false;
if (skip) console.log(`# backup storage real tests skipped: ${skip}`);

const MiB = 1024 ** 2;
const SECRET = 'bs-route-secret';
let T = '';
let files: Running & { hits: Map<string, number> };
let server: Running;
let bs: BackupStorageHandlers;
let imageBytes = Buffer.alloc(0);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const imagesDir = () => join(T, 'bs/images');
const partsOf = (uuid: string) => readdirSync(imagesDir()).filter((n) => n.startsWith(`.${uuid}`));

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function refusal(p: Promise<unknown>): Promise<CloudError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CloudError, `not a CloudError: ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}

const auth = (secret = SECRET) => ({ authorization: `Bearer ${secret}` });

before(async () => {
  if (skip) return;
  T = mkdtempSync(join(tmpdir(), 'nimbus-bs-'));
  mkdirSync(join(T, 'src'));
  tool('qemu-img', ['create', '-q', '-f', 'qcow2', join(T, 'src/cirros.qcow2'), String(32 * MiB)]);
  tool('qemu-io', ['-c', `write -P 0x42 0 ${2 * MiB}`, join(T, 'src/cirros.qcow2')]);
  imageBytes = readFileSync(join(T, 'src/cirros.qcow2'));
  tool('qemu-img', ['create', '-q', '-f', 'raw', join(T, 'src/disk.raw'), String(4 * MiB)]);
  files = await serveFiles(join(T, 'src'));
  server = await serveBackupStorage({ dir: join(T, 'bs'), secret: SECRET });
  bs = backupStorageHandlers({ dir: join(T, 'bs') });
});

after(async () => {
  await files?.close();
  await server?.close();
  if (T) rmSync(T, { recursive: true, force: true });
});

test('bs.connect reports the real capacity of the directory’s filesystem', { skip }, async () => {
  const c = await bs['bs.connect']({});
  const df = tool('df', ['-B1', '--output=size', T]).trim().split('\n')[1]?.trim();
  assert.equal(c.capacityTotal, Number(df));
  assert.ok(c.capacityAvailable > 0 && c.capacityAvailable <= c.capacityTotal);
  assert.ok(existsSync(imagesDir()));
});

test('bs.download-image from HTTP: stored as <uuid>.qcow2 with sizes and digest; again = no fetch', {
  skip,
}, async () => {
  const got = await bs['bs.download-image']({ imageUuid: 'img-http', url: `${files.url}/cirros.qcow2` });
  assert.equal(got.size, 32 * MiB);
  assert.ok(got.actualSize > 2 * MiB && got.actualSize < 8 * MiB, `actualSize ${got.actualSize}`);
  assert.equal(got.sha256, sha(imageBytes));
  assert.ok(readFileSync(join(imagesDir(), 'img-http.qcow2')).equals(imageBytes));
  assert.deepEqual(
    await bs['bs.download-image']({ imageUuid: 'img-http', url: `${files.url}/cirros.qcow2` }),
    got,
  );
  assert.equal(files.hits.get('cirros.qcow2'), 1);
});

test('bs.download-image from a path and a file:// URL; a raw image becomes qcow2', { skip }, async () => {
  const byPath = await bs['bs.download-image']({ imageUuid: 'img-path', url: join(T, 'src/cirros.qcow2') });
  assert.equal(byPath.sha256, sha(imageBytes));
  const byUrl = await bs['bs.download-image']({
    imageUuid: 'img-raw',
    url: `file://${join(T, 'src/disk.raw')}`,
  });
  assert.equal(byUrl.size, 4 * MiB);
  const stored = JSON.parse(tool('qemu-img', ['info', '--output=json', join(imagesDir(), 'img-raw.qcow2')]));
  assert.equal(stored.format, 'qcow2');
  assert.equal(
    byUrl.sha256,
    sha(readFileSync(join(imagesDir(), 'img-raw.qcow2'))),
    'digest of the stored file',
  );
});

test('bs.download-image failures leave nothing behind', { skip }, async () => {
  const missing = await refusal(
    bs['bs.download-image']({ imageUuid: 'img-404', url: `${files.url}/nope.qcow2` }),
  );
  assert.equal(missing.code, 'IMAGE_SOURCE_UNREADABLE');
  assert.equal(missing.reason, 'NotFound');
  const noFile = await refusal(
    bs['bs.download-image']({ imageUuid: 'img-nofile', url: join(T, 'src/nope') }),
  );
  assert.equal(noFile.code, 'IMAGE_SOURCE_UNREADABLE');
  assert.equal(
    (await refusal(bs['bs.download-image']({ imageUuid: 'img-ftp', url: 'ftp://x/y' }))).code,
    'IMAGE_URL_INVALID',
  );
  assert.equal(
    (await refusal(bs['bs.download-image']({ imageUuid: '../escape', url: `${files.url}/cirros.qcow2` })))
      .code,
    'STORAGE_NAME_INVALID',
  );
  for (const uuid of ['img-404', 'img-nofile', 'img-ftp']) {
    assert.equal(existsSync(join(imagesDir(), `${uuid}.qcow2`)), false);
    assert.deepEqual(partsOf(uuid), []);
  }
});

test('GET streams the image with its digest; Range gives 206; HEAD has the headers only', {
  skip,
}, async () => {
  const url = `${server.url}/v1/images/img-http`;
  const whole = await fetch(url, { headers: auth() });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('x-nimbus-sha256'), sha(imageBytes));
  assert.equal(whole.headers.get('x-nimbus-virtual-size'), String(32 * MiB));
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(imageBytes));

  const part = await fetch(url, { headers: { ...auth(), range: 'bytes=0-3' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 0-3/${imageBytes.length}`);
  assert.equal(Buffer.from(await part.arrayBuffer()).toString('latin1'), 'QFI\xfb', 'the qcow2 magic');

  const head = await fetch(url, { method: 'HEAD', headers: auth() });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(imageBytes.length));

  const none = await fetch(`${server.url}/v1/images/img-none`, { headers: auth() });
  assert.equal(none.status, 404);
  assert.equal(
    ((await none.json()) as { error: { code: string } }).error.code,
    'IMAGE_NOT_ON_BACKUP_STORAGE',
  );
});

test('PUT stores an upload (checked digest); a wrong digest or a backing file is refused, nothing kept', {
  skip,
}, async () => {
  const url = `${server.url}/v1/images/img-put`;
  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...auth(), 'x-nimbus-sha256': sha(imageBytes) },
    body: imageBytes,
  });
  assert.equal(put.status, 200);
  assert.deepEqual(((await put.json()) as { size: number }).size, 32 * MiB);
  assert.ok(readFileSync(join(imagesDir(), 'img-put.qcow2')).equals(imageBytes));
  const back = await fetch(url, { headers: auth() });
  assert.ok(Buffer.from(await back.arrayBuffer()).equals(imageBytes));

  const bad = await fetch(`${server.url}/v1/images/img-badsum`, {
    method: 'PUT',
    headers: { ...auth(), 'x-nimbus-sha256': 'f'.repeat(64) },
    body: imageBytes,
  });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'IMAGE_CHECKSUM_MISMATCH');

  tool('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    join(T, 'src/cirros.qcow2'),
    '-F',
    'qcow2',
    join(T, 'src/overlay.qcow2'),
  ]);
  const backed = await fetch(`${server.url}/v1/images/img-backed`, {
    method: 'PUT',
    headers: auth(),
    body: readFileSync(join(T, 'src/overlay.qcow2')),
  });
  assert.equal(backed.status, 400);
  assert.equal(((await backed.json()) as { error: { code: string } }).error.code, 'IMAGE_HAS_BACKING_FILE');
  // a declared length beyond the free space is refused before anything is written
  const huge = await new Promise<number>((resolve, reject) => {
    const r = httpRequest(
      `${server.url}/v1/images/img-huge`,
      { method: 'PUT', headers: { ...auth(), 'content-length': String(2 ** 52) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        r.destroy(); // the rest of the body is never sent
      },
    );
    r.on('error', reject);
    r.write(imageBytes.subarray(0, 4096));
  });
  assert.equal(huge, 409);
  for (const uuid of ['img-badsum', 'img-backed', 'img-huge']) {
    assert.equal(existsSync(join(imagesDir(), `${uuid}.qcow2`)), false);
    assert.deepEqual(partsOf(uuid), []);
  }
});

test('the image routes refuse a missing or wrong secret, and names that are not uuids', {
  skip,
}, async () => {
  const url = `${server.url}/v1/images/img-http`;
  for (const headers of [{}, auth('wrong'), { authorization: SECRET }]) {
    const get = await fetch(url, { headers });
    assert.equal(get.status, 401);
    const put = await fetch(`${server.url}/v1/images/img-sneak`, {
      method: 'PUT',
      headers,
      body: imageBytes,
    });
    assert.equal(put.status, 401);
  }
  assert.equal(existsSync(join(imagesDir(), 'img-sneak.qcow2')), false);
  const odd = await fetch(`${server.url}/v1/images/..%2Fescape`, { headers: auth() });
  assert.equal(odd.status, 400);
  const post = await fetch(url, { method: 'POST', headers: auth() });
  assert.equal(post.status, 400);
});

test('bs.delete-image removes the image and its digest; deleting again is success', { skip }, async () => {
  await bs['bs.delete-image']({ imageUuid: 'img-http' });
  assert.equal(existsSync(join(imagesDir(), 'img-http.qcow2')), false);
  assert.equal(existsSync(join(imagesDir(), 'img-http.qcow2.sha256')), false);
  await bs['bs.delete-image']({ imageUuid: 'img-http' });
  const res = await fetch(`${server.url}/v1/images/img-http`, { headers: auth() });
  assert.equal(res.status, 404);
});
