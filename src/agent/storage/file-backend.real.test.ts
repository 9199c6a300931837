// The local (directory) primary storage end to end with the real qemu-img/qemu-io: image cache
// from an HTTP server (checksums, one download for concurrent callers), linked-clone volumes,
// resize, internal snapshots (create, write, revert, delete), a disk held by a running QEMU, and
// upload to a real backup storage served over HTTP. Skipped (reason printed) without root or qemu-img.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AgentRequest, AgentResponse, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { type Running, serveBackupStorage, serveFiles } from '../backup-storage/test-server.js';
import type { AgentHandlers } from '../handlers.js';
import type { StorageCommand } from './backend.js';
import { storageHandlers } from './index.js';

const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? 'needs root'
  : !hasQemuImg
    ? 'qemu-img is not installed (apt-get install qemu-utils)'
    : false;
if (skip) console.log(`# storage real tests skipped: ${skip}`);

const MiB = 1024 ** 2;
const SECRET = 'bs-secret-for-tests';
let T = '';
let files: Running & { hits: Map<string, number> };
let bs: Running;
let storage: StorageRef;
let handlers: AgentHandlers;
let baseSha = '';
const children: ChildProcess[] = [];

/** Kills a child this test started, by its PID (it may have exited already). */
function stop(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {}
}

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** qemu-io pattern check: true when the range holds the pattern byte. */
function holds(path: string, pattern: number, offset: number, length: number): boolean {
  const r = spawnSync('qemu-io', ['-r', '-U', '-c', `read -P ${pattern} ${offset} ${length}`, path], {
    encoding: 'utf8',
  });
  return r.status === 0 && !r.stdout.includes('Pattern verification failed');
}

function write(path: string, pattern: number, offset: number, length: number): void {
  tool('qemu-io', ['-c', `write -P ${pattern} ${offset} ${length}`, path]);
}

function info(path: string, chain = false): Array<Record<string, unknown>> {
  const out = JSON.parse(
    tool('qemu-img', ['info', '-U', '--output=json', ...(chain ? ['--backing-chain'] : []), path]),
  );
  return Array.isArray(out) ? out : [out];
}

async function call<C extends StorageCommand>(
  command: C,
  request: AgentRequest<C>,
): Promise<AgentResponse<C>> {
  const h = handlers[command] as ((r: AgentRequest<C>) => Promise<AgentResponse<C>>) | undefined;
  assert.ok(h, `no handler for ${command}`);
  return h(request);
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

before(async () => {
  if (skip) return;
  T = mkdtempSync(join(tmpdir(), 'nimbus-storage-'));
  mkdirSync(join(T, 'src'));
  tool('qemu-img', ['create', '-q', '-f', 'qcow2', join(T, 'src/base.qcow2'), String(64 * MiB)]);
  write(join(T, 'src/base.qcow2'), 0xab, 0, MiB);
  baseSha = createHash('sha256')
    .update(readFileSync(join(T, 'src/base.qcow2')))
    .digest('hex');
  files = await serveFiles(join(T, 'src'), { delayMs: 150 });
  bs = await serveBackupStorage({ dir: join(T, 'bs'), secret: SECRET });
  storage = { uuid: 'ps-1', type: 'local', url: join(T, 'ps') };
  handlers = storageHandlers({
    credentialFor: (url) => (url.startsWith(bs.url) ? `Bearer ${SECRET}` : undefined),
  });
});

after(async () => {
  for (const c of children) stop(c);
  await files?.close();
  await bs?.close();
  if (T) rmSync(T, { recursive: true, force: true });
});

const cacheDir = () => join(T, 'ps/imagecache');

test('image.cache: checksum good → a standalone qcow2 in imagecache/; bad → refused, nothing left', {
  skip,
}, async () => {
  const good = await call('image.cache', {
    imageUuid: 'img-good',
    url: `${files.url}/base.qcow2`,
    size: 64 * MiB,
    storage,
    sha256: baseSha,
  });
  assert.equal(good.path, join(T, 'ps/imagecache/img-good.qcow2'));
  assert.equal(good.size, 64 * MiB);
  assert.equal(info(good.path)[0]?.['backing-filename'], undefined);
  assert.ok(holds(good.path, 0xab, 0, MiB));

  const bad = await refusal(
    call('image.cache', {
      imageUuid: 'img-bad',
      url: `${files.url}/base.qcow2`,
      size: 64 * MiB,
      storage,
      sha256: '0'.repeat(64),
    }),
  );
  assert.equal(bad.code, 'IMAGE_CHECKSUM_MISMATCH');
  assert.match(bad.message, /differs from 0{64}/);
  assert.deepEqual(
    readdirSync(cacheDir()).filter((n) => n.includes('img-bad')),
    [],
    'no file of the failed copy remains',
  );
});

test('image.cache: concurrent caches of one image share one download; a later one downloads nothing', {
  skip,
}, async () => {
  mkdirSync(join(T, 'src/shared'), { recursive: true });
  tool('cp', [join(T, 'src/base.qcow2'), join(T, 'src/shared/one.qcow2')]);
  const req = { imageUuid: 'img-shared', url: `${files.url}/shared/one.qcow2`, size: 64 * MiB, storage };
  const [a, b, c] = await Promise.all([
    call('image.cache', req),
    call('image.cache', req),
    call('image.cache', req),
  ]);
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
  assert.equal(files.hits.get('shared/one.qcow2'), 1);
  await call('image.cache', req);
  assert.equal(files.hits.get('shared/one.qcow2'), 1, 'a cached image is not fetched again');
});

test('image.cache: a raw image is cached as qcow2; an image with a backing file is refused', {
  skip,
}, async () => {
  tool('qemu-img', ['create', '-q', '-f', 'raw', join(T, 'src/disk.raw'), String(2 * MiB)]);
  write(join(T, 'src/disk.raw'), 0x5a, 0, MiB);
  const raw = await call('image.cache', {
    imageUuid: 'img-raw',
    url: `${files.url}/disk.raw`,
    size: 0,
    storage,
  });
  assert.equal(info(raw.path)[0]?.format, 'qcow2');
  assert.ok(holds(raw.path, 0x5a, 0, MiB));

  tool('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    '/etc/hostname',
    '-F',
    'raw',
    join(T, 'src/evil.qcow2'),
    String(MiB),
  ]);
  const evil = await refusal(
    call('image.cache', { imageUuid: 'img-evil', url: `${files.url}/evil.qcow2`, size: 0, storage }),
  );
  assert.equal(evil.code, 'IMAGE_HAS_BACKING_FILE');
  assert.deepEqual(
    readdirSync(cacheDir()).filter((n) => n.includes('img-evil')),
    [],
  );
});

const cachePath = () => join(T, 'ps/imagecache/img-good.qcow2');
const volPath = () => join(T, 'ps/volumes/vol-1.qcow2');

test('volume.create: a linked clone of the cache, grown; idempotent; a different size or too small refused', {
  skip,
}, async () => {
  const req = {
    volumeUuid: 'vol-1',
    size: 128 * MiB,
    format: 'qcow2',
    storage,
    fromImageCachePath: cachePath(),
  };
  const made = await call('volume.create', req);
  assert.equal(made.path, volPath());
  const chain = info(made.path, true);
  assert.equal(chain.length, 2);
  assert.equal(chain[0]?.['backing-filename'], cachePath());
  assert.equal(chain[0]?.['virtual-size'], 128 * MiB);
  assert.equal(chain[1]?.filename, cachePath());
  assert.ok(made.actualSize > 0 && made.actualSize < MiB, `a clone is thin: ${made.actualSize}`);
  assert.ok(holds(made.path, 0xab, 0, MiB), 'the clone reads the image through its backing file');
  write(made.path, 0xcd, MiB, MiB);
  assert.ok(holds(made.path, 0xcd, MiB, MiB));
  assert.ok(holds(cachePath(), 0, MiB, MiB), 'the cache is untouched by writes to the clone');

  assert.equal((await call('volume.create', req)).path, made.path);
  assert.ok(holds(made.path, 0xcd, MiB, MiB), 'a re-run keeps the data');
  assert.equal(
    (await refusal(call('volume.create', { ...req, size: 256 * MiB }))).code,
    'VOLUME_EXISTS_DIFFERENT',
  );
  assert.equal(
    (await refusal(call('volume.create', { ...req, volumeUuid: 'vol-small', size: MiB }))).code,
    'VOLUME_SMALLER_THAN_IMAGE',
  );
  assert.equal(existsSync(join(T, 'ps/volumes/vol-small.qcow2')), false);

  const empty = await call('volume.create', {
    volumeUuid: 'vol-empty',
    size: 32 * MiB,
    format: 'qcow2',
    storage,
  });
  assert.equal(info(empty.path)[0]?.['backing-filename'], undefined);
  assert.equal(info(empty.path)[0]?.['virtual-size'], 32 * MiB);
});

test('volume.resize: grows; the same size is a no-op; shrinking and a missing volume are refused', {
  skip,
}, async () => {
  await call('volume.resize', { volumeUuid: 'vol-1', size: 256 * MiB, storage });
  assert.equal(info(volPath())[0]?.['virtual-size'], 256 * MiB);
  await call('volume.resize', { volumeUuid: 'vol-1', size: 256 * MiB, storage });
  assert.equal(
    (await refusal(call('volume.resize', { volumeUuid: 'vol-1', size: 64 * MiB, storage }))).code,
    'VOLUME_SHRINK_REFUSED',
  );
  assert.equal(
    (await refusal(call('volume.resize', { volumeUuid: 'vol-none', size: 64 * MiB, storage }))).code,
    'VOLUME_NOT_FOUND_ON_STORAGE',
  );
  assert.ok(holds(volPath(), 0xcd, MiB, MiB));
});

test('snapshots: create (idempotent) → write → revert brings the data back; delete idempotent', {
  skip,
}, async () => {
  const s1 = await call('snapshot.create', { volumeUuid: 'vol-1', snapshotUuid: 'snap-1', storage });
  assert.equal(s1.path, join(T, 'ps/snapshots/snap-1.json'));
  assert.ok(s1.size > 0);
  await call('snapshot.create', { volumeUuid: 'vol-1', snapshotUuid: 'snap-1', storage });
  const listed = tool('qemu-img', ['snapshot', '-l', volPath()]);
  assert.equal(listed.split('snap-1').length - 1, 1, 'one internal snapshot, not two');

  write(volPath(), 0xef, 0, 2 * MiB);
  assert.ok(holds(volPath(), 0xef, 0, 2 * MiB));
  await call('snapshot.revert', { volumeUuid: 'vol-1', snapshotUuid: 'snap-1', storage });
  assert.ok(holds(volPath(), 0xab, 0, MiB), 'image data back');
  assert.ok(holds(volPath(), 0xcd, MiB, MiB), 'clone data back');

  assert.equal(
    (await refusal(call('snapshot.revert', { volumeUuid: 'vol-1', snapshotUuid: 'snap-none', storage })))
      .code,
    'SNAPSHOT_NOT_FOUND_ON_STORAGE',
  );
  await call('snapshot.create', { volumeUuid: 'vol-1', snapshotUuid: 'snap-2', storage });
  await call('snapshot.delete', { snapshotUuid: 'snap-2', storage });
  await call('snapshot.delete', { snapshotUuid: 'snap-2', storage });
  assert.ok(!tool('qemu-img', ['snapshot', '-l', volPath()]).includes('snap-2'));
  assert.equal(existsSync(join(T, 'ps/snapshots/snap-2.json')), false);
  assert.ok(holds(volPath(), 0xab, 0, MiB), 'deleting a snapshot leaves the data');
});

test('image.upload: a volume and a snapshot become standalone qcow2 images on the backup storage', {
  skip,
}, async () => {
  // the volume now differs from snap-1: the snapshot upload must carry the snapshot's data
  write(volPath(), 0x11, 0, MiB);
  const vol = await call('image.upload', {
    imageUuid: 'img-from-vol',
    sourcePath: volPath(),
    size: 256 * MiB,
    storage,
    backupStorageUrl: bs.url,
  });
  const onBs = join(T, 'bs/images/img-from-vol.qcow2');
  const stored = info(onBs, true);
  assert.equal(stored.length, 1, 'no backing chain');
  assert.equal(stored[0]?.format, 'qcow2');
  assert.equal(vol.size, 256 * MiB);
  assert.ok(vol.actualSize > 0);
  assert.ok(holds(onBs, 0x11, 0, MiB) && holds(onBs, 0xcd, MiB, MiB));

  const snap = await call('image.upload', {
    imageUuid: 'img-from-snap',
    sourcePath: join(T, 'ps/snapshots/snap-1.json'),
    size: 128 * MiB,
    storage,
    backupStorageUrl: bs.url,
  });
  const snapOnBs = join(T, 'bs/images/img-from-snap.qcow2');
  assert.equal(info(snapOnBs, true).length, 1);
  assert.equal(snap.size, 256 * MiB, 'the snapshot was taken after the resize to 256 MiB');
  assert.ok(holds(snapOnBs, 0xab, 0, MiB) && holds(snapOnBs, 0xcd, MiB, MiB));

  // already there: success without sending it again (the file keeps its time)
  const before = readFileSync(snapOnBs);
  assert.deepEqual(
    await call('image.upload', {
      imageUuid: 'img-from-snap',
      sourcePath: join(T, 'ps/snapshots/snap-1.json'),
      size: 128 * MiB,
      storage,
      backupStorageUrl: bs.url,
    }),
    snap,
  );
  assert.ok(before.equals(readFileSync(snapOnBs)));
  assert.deepEqual(readdirSync(join(T, 'ps/.upload')), [], 'no scratch file left');

  const wrong = storageHandlers({ credentialFor: () => 'Bearer wrong' })['image.upload'];
  const denied = await refusal(
    wrong!({ imageUuid: 'img-x', sourcePath: volPath(), size: 1, storage, backupStorageUrl: bs.url }),
  );
  assert.equal(denied.reason, 'Unauthenticated');
});

test('a disk held by a running QEMU: snapshot refused without a live hook, done through the hook with one', {
  skip,
}, async (t) => {
  const vol = await call('volume.create', {
    volumeUuid: 'vol-live',
    size: 16 * MiB,
    format: 'qcow2',
    storage,
  });
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      '-machine',
      'none',
      '-nodefaults',
      '-display',
      'none',
      '-blockdev',
      `driver=qcow2,node-name=d0,file.driver=file,file.filename=${vol.path}`,
    ],
    { stdio: 'ignore' },
  );
  children.push(qemu);
  t.after(() => stop(qemu));
  // QEMU holds the lock once plain qemu-img info (no -U) fails
  for (let i = 0; i < 100 && spawnSync('qemu-img', ['info', vol.path]).status === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.notEqual(spawnSync('qemu-img', ['info', vol.path]).status, 0, 'QEMU holds the disk');

  const held = await refusal(
    call('snapshot.create', { volumeUuid: 'vol-live', snapshotUuid: 'snap-live', storage }),
  );
  assert.equal(held.code, 'STORAGE_VOLUME_IN_USE');

  const calls: string[] = [];
  const live = storageHandlers({
    live: {
      snapshotCreate: async (path, name) => {
        calls.push(`create ${path} ${name}`);
        return true;
      },
      snapshotDelete: async (path, name) => {
        calls.push(`delete ${path} ${name}`);
        return true;
      },
      resize: async (path, size) => {
        calls.push(`resize ${path} ${size}`);
        return true;
      },
    },
  });
  await live['snapshot.create']!({ volumeUuid: 'vol-live', snapshotUuid: 'snap-live', storage });
  await live['volume.resize']!({ volumeUuid: 'vol-live', size: 32 * MiB, storage });
  assert.deepEqual(calls, [`create ${vol.path} snap-live`, `resize ${vol.path} ${32 * MiB}`]);
  // reading a disk in use still works (-U): the resize is left to QEMU, the upload refused
  const upload = await refusal(
    call('image.upload', {
      imageUuid: 'img-live',
      sourcePath: vol.path,
      size: 16 * MiB,
      storage,
      backupStorageUrl: bs.url,
    }),
  );
  assert.equal(upload.code, 'STORAGE_VOLUME_IN_USE');
});

test('volume.delete and image.uncache: gone, records of its snapshots too; again is success', {
  skip,
}, async () => {
  await call('volume.delete', { volumeUuid: 'vol-1', storage });
  assert.equal(existsSync(volPath()), false);
  assert.equal(existsSync(join(T, 'ps/snapshots/snap-1.json')), false);
  await call('volume.delete', { volumeUuid: 'vol-1', storage });
  await call('snapshot.delete', { snapshotUuid: 'snap-1', storage });
  await call('image.uncache', { imageUuid: 'img-good', storage });
  assert.equal(existsSync(cachePath()), false);
  await call('image.uncache', { imageUuid: 'img-good', storage });
  assert.equal(
    (
      await refusal(
        call('volume.create', {
          volumeUuid: 'vol-2',
          size: 128 * MiB,
          format: 'qcow2',
          storage,
          fromImageCachePath: cachePath(),
        }),
      )
    ).code,
    'IMAGE_CACHE_MISSING',
  );
});
