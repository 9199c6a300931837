/**
 * Volumes through the API: create (by size or disk offering, placed or on a given storage,
 * attached at once), the attach/detach rules (VM states, local-storage host binding, device ids,
 * 50 concurrent attaches), resize accounting, soft delete / recover / expunge and the reaper,
 * images from root volumes, cross-account isolation, and provisionVolume/destroyVolume directly.
 * After all of it: every storage's used capacity is the sum of its volumes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { destroyVolume, provisionVolume } from '../../src/resources/storage/volume/provision.js';
import { reapExpiredVolumes } from '../../src/resources/storage/volume/reaper.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';
import {
  assertCapacityInvariant,
  GiB,
  type Infra,
  localStorage,
  newVm,
  next,
  ok,
  rootVolume,
  sharedStorage,
  tenant,
  usage,
  used,
} from './volume-fixtures.js';

let t: TestNode;
let infra: Infra;
let nfs: string;
let local: string;
let a: { api: Api; uuid: string };
let b: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 2, 'vol');
  nfs = await sharedStorage(t, infra, 1000 * GiB);
  local = await localStorage(t, infra, 50 * GiB);
  a = await tenant(t);
  b = await tenant(t);
  await ok(t.admin, 'PATCH', `/v1/quotas/${a.uuid}`, { 'volume.data.num': 1000 });
});
after(() => t.stop());

const create = (api: Api, body: Record<string, unknown>) =>
  api.job('POST', '/v1/volumes', { name: `v-${next()}`, ...body });
const vol = async (uuid: string) => (await t.admin.get(`/v1/volumes/${uuid}`)).body;
const vmRow = (uuid: string) =>
  t.db.db.selectFrom('vms').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();

describe('create', () => {
  test('by size on a picked storage: Ready with a path, capacity and quota taken', async () => {
    const before = await used(t, nfs);
    const job = await create(a.api, { size: 5 * GiB, primaryStorageUuid: nfs });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const v = job.result;
    assert.equal(v.state, 'Ready');
    assert.equal(v.type, 'Data');
    assert.equal(v.size, 5 * GiB);
    assert.equal(v.accountUuid, a.uuid);
    assert.match(v.path, /volumes\//);
    assert.equal(v.deviceName, null);
    assert.equal(await used(t, nfs), before + 5 * GiB);
    const u = await usage(t, a.uuid);
    assert.ok(u['volume.data.num']! >= 1 && u['volume.capacity']! >= 5 * GiB, JSON.stringify(u));
  });

  test('on ceph storage: raw whether asked or not; qcow2 asked is refused naming format, nothing taken', async () => {
    const ceph = await sharedStorage(t, infra, 100 * GiB, 'ceph');
    const job = await create(a.api, { size: GiB, primaryStorageUuid: ceph });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal(job.result.format, 'raw');
    assert.equal(
      (await create(a.api, { size: GiB, primaryStorageUuid: ceph, format: 'raw' })).result.format,
      'raw',
    );
    const before = [await used(t, ceph), await usage(t, a.uuid)];
    const bad = await a.api.post('/v1/volumes', {
      name: `v-${next()}`,
      size: GiB,
      primaryStorageUuid: ceph,
      format: 'qcow2',
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'VOLUME_FORMAT_UNSUPPORTED');
    assert.deepEqual(
      bad.body.error.details.fields.map((f: { field: string }) => f.field),
      ['format'],
    );
    assert.deepEqual([await used(t, ceph), await usage(t, a.uuid)], before);
  });

  test('by disk offering; exactly one of size and diskOfferingUuid, every bad field named', async () => {
    const offering = newId();
    await t.db.db
      .insertInto('diskOfferings')
      .values({ uuid: offering, name: `do-${next()}`, description: null, accountUuid: a.uuid, size: 3 * GiB })
      .execute();
    const job = await create(a.api, { diskOfferingUuid: offering, primaryStorageUuid: nfs });
    assert.equal(job.result.size, 3 * GiB);
    assert.equal(job.result.diskOfferingUuid, offering);
    for (const body of [{ size: GiB, diskOfferingUuid: offering }, {}]) {
      const res = await a.api.post('/v1/volumes', { name: 'bad', ...body });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      const fields = res.body.error.details.fields.map((f: { field: string }) => f.field).sort();
      assert.deepEqual(fields, ['diskOfferingUuid', 'size']);
    }
  });

  test('too big for any storage: 409 PRIMARY_STORAGE_FULL at once, nothing created, quota unchanged', async () => {
    const before = await usage(t, a.uuid);
    const count = await t.db.db
      .selectFrom('volumes')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    const res = await a.api.post('/v1/volumes', { name: 'huge', size: 5000 * GiB });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'PRIMARY_STORAGE_FULL');
    assert.deepEqual(await usage(t, a.uuid), before);
    const after = await t.db.db
      .selectFrom('volumes')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(after.n, count.n);
  });

  test('with vmUuid: attached at once at the lowest free device (vdb), hot-plugged into the running VM', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]! });
    await rootVolume(t, { vm, account: a.uuid, ps: nfs });
    const job = await create(a.api, { size: GiB, vmUuid: vm });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal(job.result.vmUuid, vm);
    assert.equal(job.result.deviceId, 1);
    assert.equal(job.result.deviceName, 'vdb');
    assert.equal((await vmRow(vm)).task, null, 'the VM is released');
    const events = await a.api.get(`/v1/events?q=resourceUuid=${job.resourceUuid}&q=type=volume.attached`);
    assert.equal(events.body.items.length, 1);
  });

  test('on local storage with a VM: on that VM’s host share', async () => {
    const host = infra.hosts[1]!;
    const vm = await newVm(t, { account: a.uuid, host });
    const before = await used(t, local, host);
    const job = await create(a.api, { size: 2 * GiB, vmUuid: vm, primaryStorageUuid: local });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal(job.result.hostUuid, host);
    assert.equal(await used(t, local, host), before + 2 * GiB);
  });
});

describe('attach and detach', () => {
  test('device ids: the lowest free one ≥ 1; a freed id is reused', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Stopped' });
    await rootVolume(t, { vm, account: a.uuid, ps: nfs });
    const vols = [];
    for (let i = 0; i < 3; i++)
      vols.push((await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid);
    for (const v of vols) await ok(a.api, 'POST', `/v1/volumes/${v}/actions/attach`, { vmUuid: vm });
    assert.deepEqual(await Promise.all(vols.map(async (v) => (await vol(v)).deviceName)), [
      'vdb',
      'vdc',
      'vdd',
    ]);
    await ok(a.api, 'POST', `/v1/volumes/${vols[1]}/actions/detach`, {});
    const d = (await vol(vols[1]!)) as { vmUuid: string | null; deviceId: number | null };
    assert.equal(d.vmUuid, null);
    assert.equal(d.deviceId, null);
    const fresh = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    const job = await ok(a.api, 'POST', `/v1/volumes/${fresh}/actions/attach`, { vmUuid: vm });
    assert.equal(job.result.deviceId, 2);
  });

  test('refusals name the state: VM Destroyed, VM busy, already attached, root volumes', async () => {
    const v = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    const destroyed = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Destroyed' });
    let res = await a.api.post(`/v1/volumes/${v}/actions/attach`, { vmUuid: destroyed });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_INVALID_STATE');
    assert.match(res.body.error.message, /it is Destroyed; attach-volume needs Running, Stopped, Paused/);
    const starting = await newVm(t, {
      account: a.uuid,
      host: infra.hosts[0]!,
      state: 'Starting',
      task: 'start',
    });
    res = await a.api.post(`/v1/volumes/${v}/actions/attach`, { vmUuid: starting });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_BUSY');
    assert.match(res.body.error.message, /busy with 'start'/);
    const busy = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Running', task: 'reboot' });
    res = await a.api.post(`/v1/volumes/${v}/actions/attach`, { vmUuid: busy });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_BUSY');
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Paused' });
    const root = await rootVolume(t, { vm, account: a.uuid, ps: nfs });
    await ok(a.api, 'POST', `/v1/volumes/${v}/actions/attach`, { vmUuid: vm });
    res = await a.api.post(`/v1/volumes/${v}/actions/attach`, { vmUuid: vm });
    assert.equal(res.body.error.code, 'VOLUME_ALREADY_ATTACHED');
    res = await a.api.post(`/v1/volumes/${root}/actions/detach`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VOLUME_ROOT_NOT_DETACHABLE');
    res = await a.api.delete(`/v1/volumes/${root}`);
    assert.equal(res.body.error.code, 'VOLUME_ROOT_NOT_DELETABLE');
    await ok(a.api, 'POST', `/v1/volumes/${v}/actions/detach`, {});
    res = await a.api.post(`/v1/volumes/${v}/actions/detach`, {});
    assert.equal(res.body.error.code, 'VOLUME_NOT_ATTACHED');
  });

  test('local storage binds a volume to its host: only VMs on that host may take it', async () => {
    const [h0, h1] = infra.hosts as [string, string];
    const v = (await create(a.api, { size: GiB, primaryStorageUuid: local })).result;
    const other = v.hostUuid === h0 ? h1 : h0;
    const far = await newVm(t, { account: a.uuid, host: other });
    const res = await a.api.post(`/v1/volumes/${v.uuid}/actions/attach`, { vmUuid: far });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VOLUME_HOST_MISMATCH');
    assert.equal((await vmRow(far)).task, null, 'a refusal holds nothing');
    const near = await newVm(t, { account: a.uuid, host: v.hostUuid });
    await ok(a.api, 'POST', `/v1/volumes/${v.uuid}/actions/attach`, { vmUuid: near });
  });

  test('50 concurrent attaches to one VM: all attach (retrying VM_BUSY), device ids 1…50 unique', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]! });
    await rootVolume(t, { vm, account: a.uuid, ps: nfs });
    const vols = await Promise.all(
      Array.from(
        { length: 50 },
        async () => (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid as string,
      ),
    );
    let busy = 0;
    await Promise.all(
      vols.map(async (v) => {
        for (let attempt = 0; ; attempt++) {
          const res = await a.api.call('POST', `/v1/volumes/${v}/actions/attach?wait=true`, { vmUuid: vm });
          if (res.status === 409 && res.body.error.code === 'VM_BUSY') {
            busy++;
            assert.equal(res.body.error.retryable, true);
            // what a client does with a retryable refusal: back off, with jitter
            await new Promise((r) => setTimeout(r, Math.random() * Math.min(400, 10 * 2 ** attempt)));
            continue;
          }
          assert.equal(res.body.state, 'Succeeded', JSON.stringify(res.body));
          return;
        }
      }),
    );
    assert.ok(busy > 0, 'concurrent attaches were refused while the VM was held');
    const ids = (
      await t.db.db.selectFrom('volumes').select('deviceId').where('vmUuid', '=', vm).execute()
    ).map((r) => r.deviceId);
    assert.equal(ids.length, 51);
    assert.deepEqual(
      [...ids].sort((x, y) => x! - y!),
      Array.from({ length: 51 }, (_, i) => i),
    );
    assert.equal((await vmRow(vm)).task, null);
  });
});

describe('resize', () => {
  test('grows: size, capacity and volume.capacity move together; shrink refused', async () => {
    const v = (await create(a.api, { size: 2 * GiB, primaryStorageUuid: nfs })).resourceUuid;
    const [cap, q] = [await used(t, nfs), await usage(t, a.uuid)];
    const job = await ok(a.api, 'POST', `/v1/volumes/${v}/actions/resize`, { size: 6 * GiB });
    assert.equal(job.result.size, 6 * GiB);
    assert.equal(await used(t, nfs), cap + 4 * GiB);
    assert.equal((await usage(t, a.uuid))['volume.capacity'], q['volume.capacity']! + 4 * GiB);
    const res = await a.api.post(`/v1/volumes/${v}/actions/resize`, { size: 6 * GiB });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VOLUME_SHRINK_REFUSED');
  });

  test('a volume of a Running VM: the hypervisor is told (vm.resize-volume); when it refuses, nothing changes', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Running' });
    const v = (await create(a.api, { size: 2 * GiB, primaryStorageUuid: nfs, vmUuid: vm })).resourceUuid;
    const [cap, q] = [await used(t, nfs), await usage(t, a.uuid)];
    const fault = await t.admin.post('/v1/simulator/faults', {
      point: 'command:vm.resize-volume',
      error: { code: 'QMP_SAID_NO' },
      times: 1,
    });
    assert.equal(fault.status, 201);
    const failed = await a.api.job('POST', `/v1/volumes/${v}/actions/resize`, { size: 3 * GiB });
    assert.equal(failed.state, 'Failed');
    assert.equal(failed.error.code, 'QMP_SAID_NO');
    assert.equal((await vol(v)).size, 2 * GiB);
    assert.equal(await used(t, nfs), cap);
    assert.deepEqual(await usage(t, a.uuid), q);
    const job = await ok(a.api, 'POST', `/v1/volumes/${v}/actions/resize`, { size: 3 * GiB });
    assert.equal(job.result.size, 3 * GiB);
  });

  test('beyond the quota or the storage: the job fails naming why, nothing changes', async () => {
    const c = await tenant(t);
    const v = (await create(c.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    await ok(t.admin, 'PATCH', `/v1/quotas/${c.uuid}`, { 'volume.capacity': 2 * GiB });
    const [cap, q] = [await used(t, nfs), await usage(t, c.uuid)];
    let job = await c.api.job('POST', `/v1/volumes/${v}/actions/resize`, { size: 3 * GiB });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'QUOTA_EXCEEDED');
    assert.equal(job.error.details.quota, 'volume.capacity');
    job = await t.admin.job('POST', `/v1/volumes/${v}/actions/resize`, { size: 100_000 * GiB });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'QUOTA_EXCEEDED');
    await ok(t.admin, 'PATCH', `/v1/quotas/${c.uuid}`, { 'volume.capacity': 1_000_000 * GiB });
    job = await c.api.job('POST', `/v1/volumes/${v}/actions/resize`, { size: 100_000 * GiB });
    assert.equal(job.error.code, 'PRIMARY_STORAGE_FULL');
    assert.equal((await vol(v)).size, GiB);
    assert.equal(await used(t, nfs), cap);
    assert.deepEqual(await usage(t, c.uuid), q);
  });
});

describe('delete, recover, expunge', () => {
  test('DELETE detaches and soft-deletes (capacity and quota still held); recover; expunge gives all back', async () => {
    const c = await tenant(t);
    const vm = await newVm(t, { account: c.uuid, host: infra.hosts[0]! });
    const [cap, q0] = [await used(t, nfs), await usage(t, c.uuid)];
    const v = (await create(c.api, { size: 3 * GiB, vmUuid: vm, primaryStorageUuid: nfs })).resourceUuid;
    await ok(c.api, 'POST', '/v1/volume-snapshots', { name: 's', volumeUuid: v });
    await ok(c.api, 'DELETE', `/v1/volumes/${v}`);
    let row = await vol(v);
    assert.equal(row.state, 'Deleted');
    assert.equal(row.vmUuid, null);
    assert.ok(row.deletedAt);
    assert.equal(await used(t, nfs), cap + 3 * GiB, 'a Deleted volume keeps its capacity');
    let res = await c.api.post(`/v1/volumes/${v}/actions/attach`, { vmUuid: vm });
    assert.equal(res.body.error.code, 'VOLUME_INVALID_STATE');
    await ok(c.api, 'POST', `/v1/volumes/${v}/actions/recover`, {});
    row = await vol(v);
    assert.equal(row.state, 'Ready');
    assert.equal(row.deletedAt, null);
    res = await c.api.post(`/v1/volumes/${v}/actions/expunge`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VOLUME_INVALID_STATE');
    await ok(c.api, 'DELETE', `/v1/volumes/${v}`);
    await ok(c.api, 'POST', `/v1/volumes/${v}/actions/expunge`, {});
    assert.equal((await t.admin.get(`/v1/volumes/${v}`)).status, 404);
    assert.equal(await used(t, nfs), cap);
    assert.deepEqual(await usage(t, c.uuid), q0, 'volume and snapshot quotas are given back');
    const snaps = await t.db.db
      .selectFrom('volumeSnapshots')
      .select('uuid')
      .where('volumeUuid', '=', v)
      .execute();
    assert.deepEqual(snaps, []);
  });

  test('the reaper expunges volumes Deleted longer than the retention, and only those', async () => {
    const old = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    const young = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    await ok(a.api, 'DELETE', `/v1/volumes/${old}`);
    await ok(a.api, 'DELETE', `/v1/volumes/${young}`);
    await t.db.db
      .updateTable('volumes')
      .set({ deletedAt: new Date(Date.now() - 3600_000) })
      .where('uuid', '=', old)
      .execute();
    const n = await reapExpiredVolumes(t.node.services, { retentionSeconds: 600 });
    assert.equal(n, 1);
    const jobs = await t.admin.get(`/v1/jobs?q=resourceUuid=${old}&q=kind=volume.expunge`);
    assert.equal(jobs.body.items.length, 1);
    await t.admin.get(`/v1/jobs/${jobs.body.items[0].uuid}?wait=true`);
    assert.equal((await t.admin.get(`/v1/volumes/${old}`)).status, 404);
    assert.equal((await vol(young)).state, 'Deleted');
  });
});

describe('images from root volumes', () => {
  test('VM Stopped: a Ready RootVolumeTemplate image of the volume’s size; image.num counted; Running refused', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Running' });
    const root = await rootVolume(t, { vm, account: a.uuid, ps: nfs, size: 8 * GiB });
    let res = await a.api.post(`/v1/volumes/${root}/actions/create-image`, { name: 'img' });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_INVALID_STATE');
    await t.db.db.updateTable('vms').set({ state: 'Stopped' }).where('uuid', '=', vm).execute();
    const before = (await usage(t, a.uuid))['image.num'] ?? 0;
    const job = await ok(a.api, 'POST', `/v1/volumes/${root}/actions/create-image`, {
      name: 'img',
      platform: 'Linux',
    });
    assert.equal(job.result.state, 'Ready');
    assert.equal(job.result.mediaType, 'RootVolumeTemplate');
    assert.equal(job.result.url, `volume://${root}`);
    assert.equal(job.result.size, 8 * GiB);
    assert.equal(job.result.accountUuid, a.uuid);
    assert.equal((await usage(t, a.uuid))['image.num'], before + 1);
    assert.equal((await vmRow(vm)).task, null);
    const data = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    res = await a.api.post(`/v1/volumes/${data}/actions/create-image`, { name: 'img' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VOLUME_NOT_ROOT');
  });
});

describe('isolation', () => {
  test('another account’s volume and VM are 404; lists show only one’s own', async () => {
    const mine = (await create(a.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    const theirs = (await create(b.api, { size: GiB, primaryStorageUuid: nfs })).resourceUuid;
    const vmA = await newVm(t, { account: a.uuid, host: infra.hosts[0]! });
    assert.equal((await b.api.get(`/v1/volumes/${mine}`)).status, 404);
    for (const [method, path, body] of [
      ['POST', `/v1/volumes/${mine}/actions/attach`, { vmUuid: vmA }],
      ['POST', `/v1/volumes/${mine}/actions/resize`, { size: 9 * GiB }],
      ['DELETE', `/v1/volumes/${mine}`, undefined],
      ['PATCH', `/v1/volumes/${mine}`, { name: 'x' }],
    ] as const) {
      const res = await b.api.call(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'VOLUME_NOT_FOUND');
    }
    // named in the body, not the path: a 400 naming the field (the one rule for missing references)
    const snap = await b.api.post('/v1/volume-snapshots', { name: 's', volumeUuid: mine });
    assert.equal(snap.status, 400);
    assert.equal(snap.body.error.code, 'VOLUME_NOT_FOUND');
    assert.equal(snap.body.error.details.fields[0].field, 'volumeUuid');
    const res = await b.api.post(`/v1/volumes/${theirs}/actions/attach`, { vmUuid: vmA });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VM_NOT_FOUND');
    assert.equal(res.body.error.details.fields[0].field, 'vmUuid');
    const list = await b.api.get('/v1/volumes?limit=1000');
    assert.ok(list.body.items.every((v: { accountUuid: string }) => v.accountUuid === b.uuid));
    assert.ok(list.body.items.some((v: { uuid: string }) => v.uuid === theirs));
  });
});

describe('provisionVolume / destroyVolume (the VM chains’ API)', () => {
  test('idempotent on uuid, PRIMARY_STORAGE_FULL when it does not fit, destroy of a missing volume is success', async () => {
    const { drivers } = t.node.services.deps;
    const host = await t.db.db
      .selectFrom('hosts')
      .select(['uuid', 'managementIp', 'hypervisorType'])
      .where('uuid', '=', infra.hosts[0]!)
      .executeTakeFirstOrThrow();
    const spec = {
      uuid: newId(),
      name: 'root',
      accountUuid: a.uuid,
      type: 'Root' as const,
      size: 4 * GiB,
      format: 'qcow2',
      primaryStorageUuid: nfs,
      hostUuid: null,
      host,
      vmUuid: null,
      deviceId: null,
      diskOfferingUuid: null,
      imageUuid: null,
      deleteWithVm: true,
    };
    const cap = await used(t, nfs);
    const first = await provisionVolume(t.db.db, drivers, spec);
    assert.equal(first.state, 'Ready');
    assert.ok(first.path);
    const again = await provisionVolume(t.db.db, drivers, spec);
    assert.equal(again.uuid, first.uuid);
    assert.equal(await used(t, nfs), cap + 4 * GiB, 'reserved once');
    await assert.rejects(provisionVolume(t.db.db, drivers, { ...spec, uuid: newId(), size: 100_000 * GiB }), {
      code: 'PRIMARY_STORAGE_FULL',
    });
    await destroyVolume(t.db.db, drivers, first.uuid);
    await destroyVolume(t.db.db, drivers, first.uuid);
    assert.equal(await used(t, nfs), cap);
    // a root volume from a qcow2 image on ceph is recorded (and made) raw: RBD is the CoW layer
    const ceph = await sharedStorage(t, infra, 100 * GiB, 'ceph');
    const onCeph = await provisionVolume(t.db.db, drivers, {
      ...spec,
      uuid: newId(),
      primaryStorageUuid: ceph,
    });
    assert.equal(onCeph.format, 'raw');
    await destroyVolume(t.db.db, drivers, onCeph.uuid);
  });
});

describe('invariants', () => {
  test('every storage’s used capacity is the sum of its volumes; nothing transitional, no VM held', async () => {
    await assertCapacityInvariant(t);
    const stuck = await t.db.db
      .selectFrom('volumes')
      .select(['uuid', 'state'])
      .where('state', 'in', ['Creating', 'Expunging'])
      .execute();
    assert.deepEqual(stuck, []);
    const held = await t.db.db
      .selectFrom('vms')
      .select(['uuid', 'task'])
      .where('task', 'in', ['attach-volume', 'detach-volume', 'create-image', 'revert-volume'])
      .execute();
    assert.deepEqual(held, []);
    const running = await t.db.db
      .selectFrom('jobs')
      .select(['uuid', 'kind'])
      .where('state', 'in', ['Pending', 'Running'])
      .execute();
    assert.deepEqual(running, []);
  });
});
