// The ceph (RBD) backend end to end, run by ceph-backend.real.test.ts INSIDE the network namespace
// where it started a one-monitor, one-OSD Ceph cluster. Not a test file of its own (no `.test.`
// in the name): it needs NIMBUS_CEPH_CONF (the cluster's ceph.conf) and NIMBUS_CEPH_WORK (local
// scratch) from the outer test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AgentRequest, AgentResponse, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { type Running, serveBackupStorage, serveFiles } from '../backup-storage/test-server.js';
import type { AgentHandlers } from '../handlers.js';
import type { StorageCommand } from './backend.js';
import { storageHandlers } from './index.js';

const MiB = 1024 ** 2;
const SECRET = 'ceph-bs-secret';
const conf = process.env.NIMBUS_CEPH_CONF ?? '';
const work = process.env.NIMBUS_CEPH_WORK ?? '';
const storage: StorageRef = { uuid: 'ps-ceph', type: 'ceph', url: `rbd:rbd:conf=${conf}` };
let files: Running & { hits: Map<string, number> };
let bs: Running;
let handlers: AgentHandlers;
let sha = '';

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const rbd = (args: string[]) => tool('rbd', ['--conf', conf, ...args]);

/** qemu-io pattern check on an image (raw on RBD, or a qcow2 file). */
const holds = (path: string, format: string, pattern: number, offset: number, length: number) => {
  const r = spawnSync(
    'qemu-io',
    ['-f', format, '-r', '-U', '-c', `read -P ${pattern} ${offset} ${length}`, path],
    {
      encoding: 'utf8',
    },
  );
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

async function refusal(p: Promise<unknown>): Promise<CloudError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(e instanceof CloudError, `expected a CloudError, got ${String(e)}`);
  return e;
}

before(async () => {
  assert.ok(conf && work, 'run by ceph-backend.real.test.ts');
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

test('ceph: cached image + protected snap, raw clone, resize, snapshot/revert, upload, deletes', async () => {
  const cached = await call('image.cache', {
    imageUuid: 'i1',
    url: `${files.url}/base.qcow2`,
    size: 64 * MiB,
    storage,
    sha256: sha,
  });
  assert.equal(cached.path, `rbd:rbd/img-i1@base:conf=${conf}`);
  assert.equal(cached.size, 64 * MiB);
  const base = JSON.parse(rbd(['snap', 'ls', '--format', 'json', 'rbd/img-i1']));
  assert.deepEqual(
    base.map((s: { name: string; protected: string }) => [s.name, s.protected]),
    [['base', 'true']],
  );
  assert.ok(holds(`rbd:rbd/img-i1:conf=${conf}`, 'raw', 0xab, 0, MiB), 'image data on RBD');
  assert.deepEqual(
    await call('image.cache', { imageUuid: 'i1', url: `${files.url}/base.qcow2`, size: 0, storage }),
    cached,
  );
  assert.equal(files.hits.get('base.qcow2'), 1);

  const volReq = {
    volumeUuid: 'v1',
    size: 128 * MiB,
    format: 'raw',
    storage,
    fromImageCachePath: cached.path,
  };
  assert.equal(
    (await refusal(call('volume.create', { ...volReq, format: 'qcow2' }))).code,
    'VOLUME_FORMAT_UNSUPPORTED',
  );
  const vol = await call('volume.create', volReq);
  assert.equal(vol.path, `rbd:rbd/vol-v1:conf=${conf}`);
  const volInfo = JSON.parse(rbd(['info', '--format', 'json', 'rbd/vol-v1']));
  assert.equal(volInfo.size, 128 * MiB);
  assert.deepEqual([volInfo.parent.image, volInfo.parent.snapshot], ['img-i1', 'base']);
  assert.deepEqual(await call('volume.create', volReq), vol);
  assert.equal(
    (await refusal(call('volume.create', { ...volReq, size: 64 * MiB }))).code,
    'VOLUME_EXISTS_DIFFERENT',
  );
  assert.ok(holds(vol.path, 'raw', 0xab, 0, MiB), 'the clone reads the image');
  tool('qemu-io', ['-f', 'raw', '-c', `write -P 0xcd ${MiB} ${MiB}`, vol.path]);

  await call('volume.resize', { volumeUuid: 'v1', size: 256 * MiB, storage });
  assert.equal(JSON.parse(rbd(['info', '--format', 'json', 'rbd/vol-v1'])).size, 256 * MiB);
  assert.equal(
    (await refusal(call('volume.resize', { volumeUuid: 'v1', size: MiB, storage }))).code,
    'VOLUME_SHRINK_REFUSED',
  );

  const snap = await call('snapshot.create', { volumeUuid: 'v1', snapshotUuid: 's1', storage });
  assert.equal(snap.path, `rbd:rbd/vol-v1@s1:conf=${conf}`);
  await call('snapshot.create', { volumeUuid: 'v1', snapshotUuid: 's1', storage });
  tool('qemu-io', ['-f', 'raw', '-c', `write -P 0xef 0 ${2 * MiB}`, vol.path]);
  await call('snapshot.revert', { volumeUuid: 'v1', snapshotUuid: 's1', storage });
  assert.ok(holds(vol.path, 'raw', 0xab, 0, MiB) && holds(vol.path, 'raw', 0xcd, MiB, MiB), 'data back');

  tool('qemu-io', ['-f', 'raw', '-c', `write -P 0x11 0 ${MiB}`, vol.path]);
  const up = await call('image.upload', {
    imageUuid: 'img-up',
    sourcePath: snap.path,
    size: 256 * MiB,
    storage,
    backupStorageUrl: bs.url,
  });
  assert.equal(up.size, 256 * MiB);
  const onBs = join(work, 'bs/images/img-up.qcow2');
  assert.equal(JSON.parse(tool('qemu-img', ['info', '--output=json', '--backing-chain', onBs])).length, 1);
  assert.ok(
    holds(onBs, 'qcow2', 0xab, 0, MiB) && holds(onBs, 'qcow2', 0xcd, MiB, MiB),
    'the snapshot’s data',
  );

  await call('snapshot.delete', { snapshotUuid: 's1', storage });
  await call('snapshot.delete', { snapshotUuid: 's1', storage });
  assert.deepEqual(JSON.parse(rbd(['snap', 'ls', '--format', 'json', 'rbd/vol-v1'])), []);
  await call('volume.delete', { volumeUuid: 'v1', storage });
  await call('volume.delete', { volumeUuid: 'v1', storage });
  await call('image.uncache', { imageUuid: 'i1', storage });
  await call('image.uncache', { imageUuid: 'i1', storage });
  assert.deepEqual(JSON.parse(rbd(['ls', '--format', 'json', 'rbd'])), [], 'the pool is empty again');
});
