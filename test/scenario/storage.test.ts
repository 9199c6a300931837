/**
 * Disk offerings and backup storages through the API: CRUD, validation that names every bad
 * field, admin-only refusals, zone attach/detach, reconnect, capacity, and delete refusals.
 * Primary storages: storage-primary.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { type Api, buildInfra, fieldsOf, startTestNode, type TestNode } from '../support/node.js';

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

let t: TestNode;
let tenant: Api;
let infra: { zone: string; cluster: string; hosts: string[] };
let seq = 0;
const next = () => ++seq;

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const job = await t.admin.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 2, 'st');
  await ok('POST', '/v1/accounts', { name: 'st-tenant', password: 'tenant-password' });
  tenant = await t.anon.login('st-tenant', 'tenant-password');
});
after(() => t.stop());

describe('disk offerings', () => {
  test('the admin creates, updates, disables and deletes one; sizes are bytes', async () => {
    const job = await ok('POST', '/v1/disk-offerings', {
      name: 'do-small',
      size: 20 * GiB,
      description: 'd',
    });
    const uuid = job.resourceUuid;
    assert.equal(job.result.size, 20 * GiB);
    assert.equal(job.result.state, 'Enabled');
    const updated = await ok('PATCH', `/v1/disk-offerings/${uuid}`, { name: 'do-small-2', description: 'x' });
    assert.equal(updated.result.name, 'do-small-2');
    assert.equal(
      (await ok('POST', `/v1/disk-offerings/${uuid}/actions/disable`, {})).result.state,
      'Disabled',
    );
    assert.equal((await ok('POST', `/v1/disk-offerings/${uuid}/actions/enable`, {})).result.state, 'Enabled');
    const listed = await t.admin.get(`/v1/disk-offerings?q=size=${20 * GiB}&q=name=do-small-2`);
    assert.deepEqual(
      listed.body.items.map((o: any) => o.uuid),
      [uuid],
    );
    await ok('DELETE', `/v1/disk-offerings/${uuid}`);
    assert.equal((await t.admin.get(`/v1/disk-offerings/${uuid}`)).status, 404);
  });

  test('every account reads them; only the admin changes them', async () => {
    const uuid = (await ok('POST', '/v1/disk-offerings', { name: 'do-shared', size: GiB })).resourceUuid;
    assert.equal((await tenant.get(`/v1/disk-offerings/${uuid}`)).body.name, 'do-shared');
    assert.ok((await tenant.get('/v1/disk-offerings')).body.items.some((o: any) => o.uuid === uuid));
    for (const res of [
      await tenant.post('/v1/disk-offerings', { name: 'mine', size: GiB }),
      await tenant.patch(`/v1/disk-offerings/${uuid}`, { name: 'mine' }),
      await tenant.post(`/v1/disk-offerings/${uuid}/actions/disable`, {}),
      await tenant.delete(`/v1/disk-offerings/${uuid}`),
    ]) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
    }
    assert.equal((await t.admin.get(`/v1/disk-offerings/${uuid}`)).body.name, 'do-shared');
  });

  test('validation names every bad field; a duplicate name is 409 DISK_OFFERING_NAME_TAKEN', async () => {
    const bad = await t.admin.post('/v1/disk-offerings', { name: ' x', size: 0 });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['name', 'size']);
    const missing = await t.admin.post('/v1/disk-offerings', { name: 'no-size' });
    assert.equal(missing.status, 400);
    assert.deepEqual(fieldsOf(missing.body), ['size']);
    await ok('POST', '/v1/disk-offerings', { name: 'do-dup', size: GiB });
    const dup = await t.admin.post('/v1/disk-offerings', { name: 'do-dup', size: 2 * GiB });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'DISK_OFFERING_NAME_TAKEN');
  });
});

describe('backup storages', () => {
  test('adding one connects it and reads its capacity (1 TiB by default, or as given)', async () => {
    const job = await ok('POST', '/v1/backup-storages', {
      name: 'bs-default',
      type: 'simulator',
      url: 'sim://bs-default',
    });
    assert.deepEqual(job.steps.done, ['create-record', 'provision', 'connect', 'mark-connected']);
    const bs = (await t.admin.get(`/v1/backup-storages/${job.resourceUuid}`)).body;
    assert.equal(bs.status, 'Connected');
    assert.equal(bs.state, 'Enabled');
    assert.equal(bs.capacityTotal, TiB);
    assert.equal(bs.capacityUsed, 0);
    assert.equal(bs.capacityAvailable, TiB);
    assert.deepEqual(bs.zoneUuids, []);
    const sized = await ok('POST', '/v1/backup-storages', {
      name: 'bs-10g',
      type: 'simulator',
      url: 'sim://bs-10g',
      capacity: 10 * GiB,
    });
    assert.equal(sized.result.capacityTotal, 10 * GiB);
    const listed = (await t.admin.get(`/v1/backup-storages?q=name=bs-10g`)).body.items[0];
    assert.equal(listed.capacityAvailable, 10 * GiB);
  });

  test('validation names every bad field; a duplicate name is 409', async () => {
    const bad = await t.admin.post('/v1/backup-storages', { name: 'b', type: 'ftp', capacity: -1 });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['capacity', 'type', 'url']);
    await ok('POST', '/v1/backup-storages', { name: 'bs-dup', type: 'simulator', url: 'sim://dup' });
    const dup = await t.admin.post('/v1/backup-storages', {
      name: 'bs-dup',
      type: 'simulator',
      url: 'sim://dup2',
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'BACKUP_STORAGE_NAME_TAKEN');
  });

  test('admin only: a tenant can neither list, see nor change them', async () => {
    const uuid = (
      await ok('POST', '/v1/backup-storages', { name: 'bs-admin', type: 'simulator', url: 'sim://a' })
    ).resourceUuid;
    assert.equal((await tenant.get('/v1/backup-storages')).status, 403);
    assert.equal((await tenant.get(`/v1/backup-storages/${uuid}`)).status, 404);
    assert.equal(
      (await tenant.post('/v1/backup-storages', { name: 'x', type: 'simulator', url: 'sim://x' })).status,
      403,
    );
    assert.equal(
      (await tenant.post(`/v1/backup-storages/${uuid}/actions/attach-zone`, { zoneUuid: infra.zone })).status,
      403,
    );
    assert.equal((await tenant.delete(`/v1/backup-storages/${uuid}`)).status, 403);
  });

  test('attach-zone / detach-zone: idempotent, shown in GET, queryable; an unknown zone is refused', async () => {
    const uuid = (
      await ok('POST', '/v1/backup-storages', { name: 'bs-zones', type: 'simulator', url: 'sim://z' })
    ).resourceUuid;
    const path = `/v1/backup-storages/${uuid}`;
    await ok('POST', `${path}/actions/attach-zone`, { zoneUuid: infra.zone });
    await ok('POST', `${path}/actions/attach-zone`, { zoneUuid: infra.zone });
    assert.deepEqual((await t.admin.get(path)).body.zoneUuids, [infra.zone]);
    const attached = await t.admin.get(`/v1/backup-storages?q=zoneRefs.zone.name=st-zone&q=name=bs-zones`);
    assert.equal(attached.body.items.length, 1);
    const unknown = await t.admin.post(`${path}/actions/attach-zone`, { zoneUuid: newId() });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'ZONE_NOT_FOUND');
    assert.deepEqual(fieldsOf(unknown.body), ['zoneUuid']);
    await ok('POST', `${path}/actions/detach-zone`, { zoneUuid: infra.zone });
    assert.deepEqual((await t.admin.get(path)).body.zoneUuids, []);
    const events = await t.admin.get(`/v1/events?q=resourceUuid=${uuid}&q=type~=backup-storage.zone.%`);
    assert.deepEqual(
      events.body.items.map((e: any) => e.type),
      ['backup-storage.zone.attached', 'backup-storage.zone.detached'],
      'the second attach changed nothing',
    );
  });

  test('reconnect re-reads capacity; a failing connect leaves it Disconnected until the next reconnect', async () => {
    const url = `sim://reconnect-${next()}`;
    const uuid = (
      await ok('POST', '/v1/backup-storages', {
        name: `bs-re-${next()}`,
        type: 'simulator',
        url,
        capacity: 5 * GiB,
      })
    ).resourceUuid;
    const path = `/v1/backup-storages/${uuid}`;
    // the storage grew behind the platform's back
    await t.db.db
      .updateTable('simulatorBackupStorages')
      .set({ capacity: 8 * GiB })
      .where('url', '=', url)
      .execute();
    await t.admin.post('/v1/simulator/faults', {
      point: 'command:bs.connect',
      host: url,
      error: { code: 'BS_DOWN' },
    });
    try {
      const failed = await t.admin.job('POST', `${path}/actions/reconnect`, {});
      assert.equal(failed.state, 'Failed');
      assert.equal(failed.error.code, 'BS_DOWN');
      const bs = (await t.admin.get(path)).body;
      assert.equal(bs.status, 'Disconnected');
      assert.equal(bs.capacityTotal, 5 * GiB);
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
    const fixed = await ok('POST', `${path}/actions/reconnect`, {});
    assert.equal(fixed.result.status, 'Connected');
    assert.equal(fixed.result.capacityTotal, 8 * GiB);
  });

  test('enable/disable; delete is refused while it holds images (Deleted ones too), then allowed', async () => {
    const uuid = (
      await ok('POST', '/v1/backup-storages', { name: 'bs-del', type: 'simulator', url: 'sim://del' })
    ).resourceUuid;
    const path = `/v1/backup-storages/${uuid}`;
    assert.equal((await ok('POST', `${path}/actions/disable`, {})).result.state, 'Disabled');
    assert.equal((await ok('POST', `${path}/actions/enable`, {})).result.state, 'Enabled');
    const image = (
      await ok('POST', '/v1/images', {
        name: 'on-bs-del',
        url: 'http://images.example/a.qcow2?size=1048576',
        format: 'qcow2',
        backupStorageUuid: uuid,
      })
    ).resourceUuid;
    const refused = await t.admin.delete(path);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'BACKUP_STORAGE_HAS_IMAGES');
    await ok('DELETE', `/v1/images/${image}`);
    assert.equal(
      (await t.admin.delete(path)).body.error.code,
      'BACKUP_STORAGE_HAS_IMAGES',
      'a Deleted image still counts',
    );
    await ok('POST', `/v1/images/${image}/actions/expunge`, {});
    await ok('DELETE', path);
    assert.equal((await t.admin.get(path)).status, 404);
  });
});
