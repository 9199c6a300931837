/**
 * Images through the API: adding from a URL onto backup storage, who sees which image (own and
 * public ones), who may change them, validation, quota, delete → recover / expunge, capacity
 * refusals, and exact backup-storage accounting under 50 concurrent adds with failures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { reapExpiredImages } from '../../src/resources/storage/image/reaper.js';
import { type Api, buildInfra, fieldsOf, startTestNode, type TestNode } from '../support/node.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

let t: TestNode;
let alice: Api;
let bob: Api;
let aliceUuid: string;
let infra: { zone: string; cluster: string; hosts: string[] };
let bs: string;
let seq = 0;
const next = () => ++seq;

async function ok(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

const imageUrl = (bytes: number) => `http://images.example/img-${next()}.qcow2?size=${bytes}`;
const backupStorage = async (uuid: string) => (await t.admin.get(`/v1/backup-storages/${uuid}`)).body;
const simImages = (url: string) =>
  t.db.db
    .selectFrom('simulatorBackupStorageImages')
    .select(['imageUuid', 'size'])
    .where('url', '=', url)
    .execute();
const quotaUsed = async (account: string) =>
  (
    await t.db.db
      .selectFrom('quotas')
      .select('used')
      .where('accountUuid', '=', account)
      .where('name', '=', 'image.num')
      .executeTakeFirst()
  )?.used ?? 0;

async function newBackupStorage(capacity?: number, attach = true): Promise<{ uuid: string; url: string }> {
  const url = `sim://img-bs-${next()}`;
  const uuid = (
    await ok(t.admin, 'POST', '/v1/backup-storages', {
      name: `img-bs-${next()}`,
      type: 'simulator',
      url,
      ...(capacity ? { capacity } : {}),
    })
  ).resourceUuid;
  if (attach)
    await ok(t.admin, 'POST', `/v1/backup-storages/${uuid}/actions/attach-zone`, { zoneUuid: infra.zone });
  return { uuid, url };
}

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'img');
  bs = (await newBackupStorage()).uuid;
  aliceUuid = (await ok(t.admin, 'POST', '/v1/accounts', { name: 'alice', password: 'alice-password' }))
    .resourceUuid;
  await ok(t.admin, 'POST', '/v1/accounts', { name: 'bob', password: 'bob-password' });
  alice = await t.anon.login('alice', 'alice-password');
  bob = await t.anon.login('bob', 'bob-password');
});
after(() => t.stop());

describe('adding an image', () => {
  test('downloads it onto the chosen backup storage, records its size and accounts it', async () => {
    const before = await backupStorage(bs);
    const job = await ok(t.admin, 'POST', '/v1/images', {
      name: 'ubuntu',
      url: `http://images.example/ubuntu.qcow2?size=${2 * GiB}&actualSize=${600 * MiB}`,
      format: 'qcow2',
      guestOsType: 'ubuntu22.04',
      minDisk: 10 * GiB,
      backupStorageUuid: bs,
    });
    assert.deepEqual(job.steps.done, [
      'create-record',
      'reserve-quota',
      'download',
      'reserve-capacity',
      'mark-ready',
    ]);
    const image = job.result;
    assert.equal(image.state, 'Ready');
    assert.equal(image.size, 2 * GiB);
    assert.equal(image.actualSize, 600 * MiB);
    assert.equal(image.mediaType, 'RootVolumeTemplate');
    assert.equal(image.platform, 'Linux');
    assert.equal(image.minDisk, 10 * GiB);
    assert.equal(image.isPublic, false);
    assert.equal(image.backupStorageUuid, bs);
    assert.equal((await backupStorage(bs)).capacityUsed, before.capacityUsed + 600 * MiB);
  });

  test('without a backup storage it picks the Connected one attached to a zone with the most free space', async () => {
    const roomy = await newBackupStorage(100 * 1024 * GiB);
    await newBackupStorage(1024 * 1024 * GiB, false); // bigger, but in no zone
    const job = await ok(t.admin, 'POST', '/v1/images', {
      name: `pick-${next()}`,
      url: imageUrl(MiB),
      format: 'raw',
    });
    assert.equal(job.result.backupStorageUuid, roomy.uuid);
  });

  test('an iso is an ISO; the media type must match the format', async () => {
    const iso = await ok(alice, 'POST', '/v1/images', {
      name: 'cd',
      url: imageUrl(MiB),
      format: 'iso',
      platform: 'Other',
    });
    assert.equal(iso.result.mediaType, 'ISO');
    const bad = await alice.post('/v1/images', {
      name: 'x',
      url: imageUrl(MiB),
      format: 'qcow2',
      mediaType: 'ISO',
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['mediaType']);
    const data = await ok(alice, 'POST', '/v1/images', {
      name: 'data-tpl',
      url: imageUrl(MiB),
      format: 'raw',
      mediaType: 'DataVolumeTemplate',
    });
    assert.equal(data.result.mediaType, 'DataVolumeTemplate');
  });

  test('validation names every bad field, and a refused add leaves nothing', async () => {
    const count = async () => (await t.admin.get('/v1/images?count=true&limit=0')).body.total;
    const before = await count();
    const bad = await alice.post('/v1/images', { name: '', url: 'ssh://x/y', format: 'vmdk', minDisk: -1 });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['format', 'minDisk', 'name', 'url']);
    const unknown = await alice.post('/v1/images', {
      name: 'x',
      url: imageUrl(MiB),
      format: 'raw',
      backupStorageUuid: newId(),
    });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'BACKUP_STORAGE_NOT_FOUND');
    assert.deepEqual(fieldsOf(unknown.body), ['backupStorageUuid']);
    assert.equal(await count(), before);
  });

  test('a disabled backup storage takes no images; with none usable the add is refused at once', async () => {
    const own = await newBackupStorage();
    await ok(t.admin, 'POST', `/v1/backup-storages/${own.uuid}/actions/disable`, {});
    const refused = await t.admin.post('/v1/images', {
      name: 'x',
      url: imageUrl(MiB),
      format: 'raw',
      backupStorageUuid: own.uuid,
    });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'BACKUP_STORAGE_NOT_READY');
    assert.deepEqual(refused.body.error.details, { state: 'Disabled', status: 'Connected' });
    // disable every storage for a moment
    const all = (await t.admin.get('/v1/backup-storages?q=state=Enabled&limit=1000')).body.items.map(
      (b: any) => b.uuid,
    );
    await t.db.db.updateTable('backupStorages').set({ state: 'Disabled' }).where('uuid', 'in', all).execute();
    try {
      const none = await alice.post('/v1/images', { name: 'x', url: imageUrl(MiB), format: 'raw' });
      assert.equal(none.status, 409);
      assert.equal(none.body.error.code, 'NO_BACKUP_STORAGE');
    } finally {
      await t.db.db
        .updateTable('backupStorages')
        .set({ state: 'Enabled' })
        .where('uuid', 'in', all)
        .execute();
    }
  });
});

describe('who sees and changes images', () => {
  test("a tenant's private image is invisible to another tenant; a public one is visible to all", async () => {
    const priv = (
      await ok(alice, 'POST', '/v1/images', { name: 'alice-private', url: imageUrl(MiB), format: 'qcow2' })
    ).resourceUuid;
    const pub = (
      await ok(t.admin, 'POST', '/v1/images', {
        name: 'everyone',
        url: imageUrl(MiB),
        format: 'qcow2',
        isPublic: true,
      })
    ).resourceUuid;
    const adminPrivate = (
      await ok(t.admin, 'POST', '/v1/images', { name: 'admin-only', url: imageUrl(MiB), format: 'raw' })
    ).resourceUuid;
    const names = async (api: Api, q = '') =>
      (await api.get(`/v1/images?limit=1000${q}`)).body.items.map((i: any) => i.uuid);
    assert.ok((await names(alice)).includes(priv));
    assert.ok((await names(alice)).includes(pub));
    assert.ok(!(await names(alice)).includes(adminPrivate));
    assert.ok(!(await names(bob)).includes(priv));
    assert.ok((await names(bob)).includes(pub));
    assert.deepEqual(await names(bob, '&q=name=alice-private'), []);
    assert.deepEqual(await names(bob, '&q=isPublic=true&q=name=everyone'), [pub]);
    assert.equal((await bob.get(`/v1/images/${priv}`)).status, 404);
    assert.equal((await bob.get(`/v1/images/${pub}`)).body.name, 'everyone');
    assert.ok((await names(t.admin)).includes(priv), 'the admin sees every image');
    // seeing is not owning
    for (const res of [
      await bob.patch(`/v1/images/${pub}`, { name: 'mine' }),
      await bob.delete(`/v1/images/${pub}`),
      await bob.post(`/v1/images/${pub}/tags`, { key: 'k' }),
    ]) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
    }
    assert.equal((await bob.patch(`/v1/images/${pub}`, { name: 'mine' })).body.error.code, 'IMAGE_NOT_OWNED');
    assert.equal((await bob.delete(`/v1/images/${priv}`)).status, 404);
  });

  test('only the admin publishes images', async () => {
    const res = await alice.post('/v1/images', {
      name: 'pub',
      url: imageUrl(MiB),
      format: 'raw',
      isPublic: true,
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'IMAGE_PUBLIC_ADMIN_ONLY');
    const own = (
      await ok(alice, 'POST', '/v1/images', { name: 'to-publish', url: imageUrl(MiB), format: 'raw' })
    ).resourceUuid;
    assert.equal((await alice.patch(`/v1/images/${own}`, { isPublic: true })).status, 403);
    const renamed = await ok(alice, 'PATCH', `/v1/images/${own}`, {
      name: 'renamed',
      platform: 'Windows',
      guestOsType: null,
    });
    assert.equal(renamed.result.platform, 'Windows');
    assert.equal((await ok(t.admin, 'PATCH', `/v1/images/${own}`, { isPublic: true })).result.isPublic, true);
    assert.equal((await bob.get(`/v1/images/${own}`)).body.name, 'renamed');
  });
});

describe('quota, delete, recover, expunge', () => {
  test('image.num is reserved at admission and refused at the limit; expunge gives it back', async () => {
    await t.db.db
      .insertInto('quotas')
      .values({ accountUuid: aliceUuid, name: 'image.num', limitValue: 100 })
      .onConflict((oc) => oc.columns(['accountUuid', 'name']).doNothing())
      .execute();
    const used = await quotaUsed(aliceUuid);
    await t.db.db
      .updateTable('quotas')
      .set({ limitValue: used + 1 })
      .where('accountUuid', '=', aliceUuid)
      .where('name', '=', 'image.num')
      .execute();
    const last = (await ok(alice, 'POST', '/v1/images', { name: 'last', url: imageUrl(MiB), format: 'raw' }))
      .resourceUuid;
    const refused = await alice.post('/v1/images', {
      name: 'one-too-many',
      url: imageUrl(MiB),
      format: 'raw',
    });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal((await alice.get('/v1/images?q=name=one-too-many')).body.items.length, 0);
    await ok(alice, 'DELETE', `/v1/images/${last}`);
    assert.equal(await quotaUsed(aliceUuid), used + 1, 'a Deleted image still counts');
    await ok(alice, 'POST', `/v1/images/${last}/actions/expunge`, {});
    assert.equal(await quotaUsed(aliceUuid), used);
    await ok(alice, 'POST', '/v1/images', { name: 'fits-again', url: imageUrl(MiB), format: 'raw' });
    await t.db.db
      .updateTable('quotas')
      .set({ limitValue: 100 })
      .where('accountUuid', '=', aliceUuid)
      .where('name', '=', 'image.num')
      .execute();
  });

  test('delete is soft (listed as Deleted), recover brings it back, expunge frees the backup storage', async () => {
    const storage = await newBackupStorage();
    const uuid = (
      await ok(alice, 'POST', '/v1/images', {
        name: 'lifecycle',
        url: imageUrl(300 * MiB),
        format: 'qcow2',
        backupStorageUuid: storage.uuid,
      })
    ).resourceUuid;
    const path = `/v1/images/${uuid}`;
    assert.equal((await backupStorage(storage.uuid)).capacityUsed, 300 * MiB);
    const notDeleted = await alice.post(`${path}/actions/expunge`, {});
    assert.equal(notDeleted.status, 409);
    assert.equal(notDeleted.body.error.code, 'IMAGE_NOT_DELETED');
    assert.equal((await alice.post(`${path}/actions/recover`, {})).body.error.code, 'IMAGE_NOT_DELETED');
    const deleted = await ok(alice, 'DELETE', path);
    assert.equal(deleted.result.state, 'Deleted');
    assert.ok(deleted.result.deletedAt);
    assert.equal((await alice.get(`/v1/images?q=state=Deleted&q=uuid=${uuid}`)).body.items.length, 1);
    await ok(alice, 'DELETE', path); // deleting again is a no-op
    const recovered = await ok(alice, 'POST', `${path}/actions/recover`, {});
    assert.equal(recovered.result.state, 'Ready');
    assert.equal(recovered.result.deletedAt, null);
    await ok(alice, 'DELETE', path);
    assert.equal(
      (await backupStorage(storage.uuid)).capacityUsed,
      300 * MiB,
      'a Deleted image keeps its bytes',
    );
    await ok(alice, 'POST', `${path}/actions/expunge`, {});
    assert.equal((await alice.get(path)).status, 404);
    assert.equal((await backupStorage(storage.uuid)).capacityUsed, 0);
    assert.deepEqual(await simImages(storage.url), [], 'the copy is gone from the storage');
    const events = await t.admin.get(`/v1/events?q=resourceUuid=${uuid}&q=type=image.expunged`);
    assert.equal(events.body.items.length, 1);
  });

  test('an image larger than the free space fails with BACKUP_STORAGE_FULL and leaves nothing', async () => {
    const storage = await newBackupStorage(GiB);
    // the platform's accounting refuses (the simulated storage itself has room)
    await t.db.db
      .updateTable('backupStorages')
      .set({ capacityTotal: 100 * MiB })
      .where('uuid', '=', storage.uuid)
      .execute();
    const job = await alice.job('POST', '/v1/images', {
      name: 'big',
      url: imageUrl(200 * MiB),
      format: 'raw',
      backupStorageUuid: storage.uuid,
    });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'BACKUP_STORAGE_FULL');
    assert.deepEqual(job.error.details, {
      backupStorageUuid: storage.uuid,
      needed: 200 * MiB,
      available: 100 * MiB,
    });
    assert.equal((await t.admin.get(`/v1/images/${job.resourceUuid}`)).status, 404);
    assert.deepEqual(await simImages(storage.url), [], 'the downloaded copy was deleted');
    // the simulated storage refuses too when it is physically full
    const physical = await alice.job('POST', '/v1/images', {
      name: 'huge',
      url: imageUrl(2 * GiB),
      format: 'raw',
      backupStorageUuid: storage.uuid,
    });
    assert.equal(physical.state, 'Failed');
    assert.equal(physical.error.code, 'BACKUP_STORAGE_FULL');
    assert.equal((await backupStorage(storage.uuid)).capacityUsed, 0);
  });
});

describe('concurrency', () => {
  test('50 concurrent adds, 10 failing downloads: used capacity = the sum over Ready images, nothing leaked', async () => {
    const storage = await newBackupStorage(1024 * GiB);
    const injected = await t.admin.post('/v1/simulator/faults', {
      point: 'command:bs.download-image',
      host: storage.url,
      times: 10,
      error: { code: 'DOWNLOAD_BROKEN' },
    });
    assert.equal(injected.status, 201, JSON.stringify(injected.body));
    try {
      const sizes = Array.from({ length: 50 }, (_, i) => (i + 1) * MiB);
      const jobs = await Promise.all(
        sizes.map((size, i) =>
          t.admin.job('POST', '/v1/images', {
            name: `burst-${i}`,
            url: `http://images.example/burst-${i}.raw?size=${size}`,
            format: 'raw',
            backupStorageUuid: storage.uuid,
          }),
        ),
      );
      const failed = jobs.filter((j) => j.state === 'Failed');
      assert.equal(failed.length, 10, JSON.stringify(jobs.map((j) => j.state)));
      assert.ok(failed.every((j) => j.error.code === 'DOWNLOAD_BROKEN'));
      const ready = await t.db.db
        .selectFrom('images')
        .select(['uuid', 'actualSize', 'state'])
        .where('backupStorageUuid', '=', storage.uuid)
        .execute();
      assert.equal(ready.length, 40, 'failed adds left no row');
      assert.ok(ready.every((i) => i.state === 'Ready'));
      const sum = ready.reduce((s, i) => s + i.actualSize, 0);
      assert.equal((await backupStorage(storage.uuid)).capacityUsed, sum);
      const stored = await simImages(storage.url);
      assert.deepEqual(stored.map((s) => s.imageUuid).sort(), ready.map((i) => i.uuid).sort());
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });

  test('50 concurrent adds onto a storage with room for 20: exactly 20 Ready, never over capacity', async () => {
    const storage = await newBackupStorage(20 * 10 * MiB);
    const jobs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.admin.job('POST', '/v1/images', {
          name: `fill-${i}`,
          url: `http://images.example/fill-${i}.raw?size=${10 * MiB}`,
          format: 'raw',
          backupStorageUuid: storage.uuid,
        }),
      ),
    );
    assert.equal(jobs.filter((j) => j.state === 'Succeeded').length, 20);
    assert.ok(jobs.filter((j) => j.state === 'Failed').every((j) => j.error.code === 'BACKUP_STORAGE_FULL'));
    const after = await backupStorage(storage.uuid);
    assert.equal(after.capacityUsed, 200 * MiB);
    assert.equal((await simImages(storage.url)).length, 20);
  });
});

describe('the reaper', () => {
  test('expunges images Deleted longer than the retention, once', async () => {
    const storage = await newBackupStorage();
    const add = async () =>
      (
        await ok(alice, 'POST', '/v1/images', {
          name: `reap-${next()}`,
          url: imageUrl(5 * MiB),
          format: 'raw',
          backupStorageUuid: storage.uuid,
        })
      ).resourceUuid as string;
    const [old, recent, alive] = [await add(), await add(), await add()];
    await ok(alice, 'DELETE', `/v1/images/${old}`);
    await ok(alice, 'DELETE', `/v1/images/${recent}`);
    await t.db.db
      .updateTable('images')
      .set({ deletedAt: new Date(Date.now() - 2 * 3600_000) })
      .where('uuid', '=', old)
      .execute();
    const quota = await quotaUsed(aliceUuid);
    assert.equal(await reapExpiredImages(t.node.services, { retentionSeconds: 3600 }), 1);
    const jobs = (await t.admin.get(`/v1/jobs?q=resourceUuid=${old}&q=kind=image.expunge`)).body.items;
    assert.equal(jobs.length, 1);
    const done = (await t.admin.get(`/v1/jobs/${jobs[0].uuid}?wait=true`)).body;
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.equal((await t.admin.get(`/v1/images/${old}`)).status, 404);
    assert.equal((await t.admin.get(`/v1/images/${recent}`)).body.state, 'Deleted');
    assert.equal((await t.admin.get(`/v1/images/${alive}`)).body.state, 'Ready');
    assert.equal((await backupStorage(storage.uuid)).capacityUsed, 10 * MiB);
    assert.equal(await quotaUsed(aliceUuid), quota - 1);
    assert.equal(await reapExpiredImages(t.node.services, { retentionSeconds: 3600 }), 0);
  });
});
