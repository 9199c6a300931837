// The nfs backend end to end, run by nfs-backend.real.test.ts INSIDE the network namespace where
// it started nfs-ganesha (this host has no kernel NFS client and the export is only reachable
// there). Not a test file of its own (no `.test.` in the name): it needs the environment the outer
// test sets: NIMBUS_NFS_URL (nfs://127.0.0.1/<export path>), NIMBUS_NFS_DIR (the directory behind
// the export, to check what really landed on the server) and NIMBUS_NFS_WORK (local scratch).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AgentRequest, AgentResponse, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { type Running, serveBackupStorage, serveFiles } from '../backup-storage/test-server.js';
import type { AgentHandlers } from '../handlers.js';
import type { StorageCommand } from './backend.js';
import { storageHandlers } from './index.js';

const MiB = 1024 ** 2;
const SECRET = 'nfs-bs-secret';
const url = process.env.NIMBUS_NFS_URL ?? '';
const dir = process.env.NIMBUS_NFS_DIR ?? '';
const work = process.env.NIMBUS_NFS_WORK ?? '';
const storage: StorageRef = { uuid: 'ps-nfs', type: 'nfs', url };
let files: Running & { hits: Map<string, number> };
let bs: Running;
let handlers: AgentHandlers;
let sha = '';

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const holds = (path: string, pattern: number, offset: number, length: number) => {
  const r = spawnSync('qemu-io', ['-r', '-U', '-c', `read -P ${pattern} ${offset} ${length}`, path], {
    encoding: 'utf8',
  });
  return r.status === 0 && !r.stdout.includes('Pattern verification failed');
};

async function call<C extends StorageCommand>(
  command: C,
  request: AgentRequest<C>,
): Promise<AgentResponse<C>> {
  const h = handlers[command] as ((r: AgentRequest<C>) => Promise<AgentResponse<C>>) | undefined;
  assert.ok(h);
  return h(request);
}

before(async () => {
  assert.ok(url && dir && work, 'run by nfs-backend.real.test.ts');
  mkdirSync(join(work, 'src'), { recursive: true });
  tool('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'src/base.qcow2'), String(64 * MiB)]);
  tool('qemu-io', ['-c', `write -P 0xab 0 ${MiB}`, join(work, 'src/base.qcow2')]);
  sha = createHash('sha256')
    .update(readFileSync(join(work, 'src/base.qcow2')))
    .digest('hex');
  files = await serveFiles(join(work, 'src'));
  bs = await serveBackupStorage({ dir: join(work, 'bs'), secret: SECRET });
  handlers = storageHandlers({
    credentialFor: (u) => (u.startsWith(bs.url) ? `Bearer ${SECRET}` : undefined),
    scratchDir: join(work, 'scratch'),
  });
});

after(async () => {
  await files?.close();
  await bs?.close();
});

test('nfs: cache, clone, resize, snapshot/revert, upload, delete — files on the export, paths nfs://', async () => {
  const cached = await call('image.cache', {
    imageUuid: 'img-1',
    url: `${files.url}/base.qcow2`,
    size: 64 * MiB,
    storage,
    sha256: sha,
  });
  assert.equal(cached.path, `${url}/imagecache/img-1.qcow2`);
  assert.ok(existsSync(join(dir, 'imagecache/img-1.qcow2')), 'the cache is on the server');
  assert.ok(holds(cached.path, 0xab, 0, MiB));
  const bad = await call('image.cache', {
    imageUuid: 'img-bad',
    url: `${files.url}/base.qcow2`,
    size: 64 * MiB,
    storage,
    sha256: 'e'.repeat(64),
  }).catch((e: unknown) => e);
  assert.ok(bad instanceof CloudError && bad.code === 'IMAGE_CHECKSUM_MISMATCH');
  assert.deepEqual(
    readdirSync(join(dir, 'imagecache')).filter((n) => n.includes('img-bad')),
    [],
  );
  assert.deepEqual(readdirSync(join(work, 'scratch')), [], 'no scratch file left');

  const vol = await call('volume.create', {
    volumeUuid: 'vol-1',
    size: 128 * MiB,
    format: 'qcow2',
    storage,
    fromImageCachePath: cached.path,
  });
  assert.equal(vol.path, `${url}/volumes/vol-1.qcow2`);
  assert.ok(vol.actualSize > 0 && vol.actualSize < MiB, `thin clone: ${vol.actualSize}`);
  const chain = JSON.parse(tool('qemu-img', ['info', '-U', '--output=json', '--backing-chain', vol.path]));
  assert.equal(chain[0]['backing-filename'], cached.path);
  assert.equal(
    (await call('volume.create', { ...storageReq(), fromImageCachePath: cached.path })).path,
    vol.path,
  );
  tool('qemu-io', ['-c', `write -P 0xcd ${MiB} ${MiB}`, vol.path]);
  assert.ok(holds(vol.path, 0xab, 0, MiB) && holds(vol.path, 0xcd, MiB, MiB));

  await call('volume.resize', { volumeUuid: 'vol-1', size: 256 * MiB, storage });
  assert.equal(
    JSON.parse(tool('qemu-img', ['info', '-U', '--output=json', vol.path]))['virtual-size'],
    256 * MiB,
  );

  const snap = await call('snapshot.create', { volumeUuid: 'vol-1', snapshotUuid: 'snap-1', storage });
  assert.equal(snap.path, `${url}/snapshots/snap-1.json`);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'snapshots/snap-1.json'), 'utf8')), {
    volumeUuid: 'vol-1',
    volumePath: vol.path,
  });
  tool('qemu-io', ['-c', `write -P 0xef 0 ${2 * MiB}`, vol.path]);
  await call('snapshot.revert', { volumeUuid: 'vol-1', snapshotUuid: 'snap-1', storage });
  assert.ok(holds(vol.path, 0xab, 0, MiB) && holds(vol.path, 0xcd, MiB, MiB), 'data back after revert');

  tool('qemu-io', ['-c', `write -P 0x11 0 ${MiB}`, vol.path]);
  const up = await call('image.upload', {
    imageUuid: 'img-snap',
    sourcePath: snap.path,
    size: 256 * MiB,
    storage,
    backupStorageUrl: bs.url,
  });
  assert.equal(up.size, 256 * MiB);
  const onBs = join(work, 'bs/images/img-snap.qcow2');
  assert.equal(JSON.parse(tool('qemu-img', ['info', '--output=json', '--backing-chain', onBs])).length, 1);
  assert.ok(
    holds(onBs, 0xab, 0, MiB) && holds(onBs, 0xcd, MiB, MiB),
    'the snapshot’s data, not the 0x11 after it',
  );

  await call('snapshot.delete', { snapshotUuid: 'snap-1', storage });
  await call('snapshot.delete', { snapshotUuid: 'snap-1', storage });
  assert.equal(existsSync(join(dir, 'snapshots/snap-1.json')), false);
  await call('volume.delete', { volumeUuid: 'vol-1', storage });
  await call('volume.delete', { volumeUuid: 'vol-1', storage });
  assert.equal(existsSync(join(dir, 'volumes/vol-1.qcow2')), false);
  await call('image.uncache', { imageUuid: 'img-1', storage });
  await call('image.uncache', { imageUuid: 'img-1', storage });
  assert.equal(existsSync(join(dir, 'imagecache/img-1.qcow2')), false);
  assert.deepEqual(
    readdirSync(dir).sort(),
    ['imagecache', 'snapshots', 'volumes'],
    'only the layout’s directories remain',
  );
  for (const d of ['imagecache', 'snapshots', 'volumes']) assert.deepEqual(readdirSync(join(dir, d)), [], d);
});

function storageReq() {
  return { volumeUuid: 'vol-1', size: 128 * MiB, format: 'qcow2', storage };
}
