/**
 * Disk offerings, backup storages and primary storages through the API: CRUD, validation that
 * names every bad field, admin-only refusals, attach/detach (local storage: one share per host,
 * also for hosts added later), capacity as the API shows it, and delete refusals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';

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

const fieldsOf = (body: any) => [
  ...new Set((body.error.details.fields as Array<{ field: string }>).map((f) => f.field).sort()),
];

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

describe('primary storages', () => {
  const create = (body: Record<string, unknown>) =>
    ok('POST', '/v1/primary-storages', { zoneUuid: infra.zone, url: '/var/lib/nimbus', ...body });
  const get = async (uuid: string) => (await t.admin.get(`/v1/primary-storages/${uuid}`)).body;

  test('a shared storage: capacity on the storage, available = total × ratio − used', async () => {
    const job = await create({
      name: 'nfs-1',
      type: 'nfs',
      url: 'nfs://10.0.0.5/vol',
      capacity: TiB,
      overProvisioningRatio: 2.5,
    });
    const ps = await get(job.resourceUuid);
    assert.equal(ps.type, 'nfs');
    assert.equal(ps.status, 'Connected');
    assert.equal(ps.capacity, TiB);
    assert.equal(ps.capacityTotal, TiB);
    assert.equal(ps.capacityUsed, 0);
    assert.equal(ps.capacityAvailable, 2.5 * TiB);
    assert.equal(ps.overProvisioningRatio, 2.5);
    assert.equal(ps.hosts, undefined, 'no per-host shares for shared storage');
    const found = await t.admin.get(`/v1/primary-storages?q=capacityAvailable>=${2 * TiB}&q=type=nfs`);
    assert.deepEqual(
      found.body.items.map((p: any) => p.uuid),
      [job.resourceUuid],
    );
  });

  test('validation names every bad field; unknown zone 400 ZONE_NOT_FOUND; admin only', async () => {
    const bad = await t.admin.post('/v1/primary-storages', {
      name: 'bad',
      type: 'iscsi',
      url: '/x',
      capacity: 0,
      overProvisioningRatio: 0.5,
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['capacity', 'overProvisioningRatio', 'type', 'zoneUuid']);
    const zone = await t.admin.post('/v1/primary-storages', {
      name: 'nozone',
      type: 'nfs',
      url: '/x',
      capacity: GiB,
      zoneUuid: newId(),
    });
    assert.equal(zone.status, 400);
    assert.equal(zone.body.error.code, 'ZONE_NOT_FOUND');
    assert.equal(
      (
        await tenant.post('/v1/primary-storages', {
          name: 'x',
          type: 'nfs',
          url: '/x',
          capacity: GiB,
          zoneUuid: infra.zone,
        })
      ).status,
      403,
    );
    assert.equal((await tenant.get('/v1/primary-storages')).status, 403);
  });

  test('local storage: one share per host of an attached cluster, also for hosts added later; detach drops them', async () => {
    const uuid = (await create({ name: 'local-1', type: 'local', capacity: 2 * TiB })).resourceUuid;
    const path = `/v1/primary-storages/${uuid}`;
    assert.equal((await get(uuid)).capacityTotal, 0, 'not attached: no host holds it yet');
    const attached = await ok('POST', `${path}/actions/attach-cluster`, { clusterUuid: infra.cluster });
    assert.equal(attached.result.capacityTotal, 4 * TiB);
    let ps = await get(uuid);
    assert.deepEqual(ps.clusterUuids, [infra.cluster]);
    assert.deepEqual(
      ps.hosts.map((h: any) => [h.hostUuid, h.capacityTotal, h.capacityUsed, h.capacityAvailable]),
      [...infra.hosts].sort().map((h) => [h, 2 * TiB, 0, 2 * TiB]),
    );
    // a host joining the cluster gets its share in its create chain
    const host = (
      await ok('POST', '/v1/hosts', {
        name: `st-late-${next()}`,
        clusterUuid: infra.cluster,
        managementIp: '10.2.9.9',
      })
    ).resourceUuid;
    ps = await get(uuid);
    assert.equal(ps.hosts.length, 3);
    assert.ok(ps.hosts.some((h: any) => h.hostUuid === host));
    assert.equal(ps.capacityTotal, 6 * TiB);
    assert.equal(
      (await t.admin.get(`/v1/primary-storages?q=hostShares.hostUuid=${host}`)).body.items.length,
      1,
    );
    assert.equal(
      (await t.admin.get(`/v1/primary-storages?q=clusterRefs.cluster.name=st-cluster&q=uuid=${uuid}`)).body
        .items.length,
      1,
    );
    // capacity grows for every host; shrinking is refused
    await ok('PATCH', path, { capacity: 3 * TiB, overProvisioningRatio: 1.5 });
    ps = await get(uuid);
    assert.equal(ps.capacity, 3 * TiB);
    assert.ok(ps.hosts.every((h: any) => h.capacityTotal === 3 * TiB && h.capacityAvailable === 4.5 * TiB));
    assert.equal(ps.capacityAvailable, 13.5 * TiB);
    const shrink = await t.admin.patch(path, { capacity: TiB });
    assert.equal(shrink.status, 400);
    assert.equal(shrink.body.error.code, 'PRIMARY_STORAGE_CAPACITY_SHRINK');
    assert.deepEqual(fieldsOf(shrink.body), ['capacity']);
    // removing the host takes its share
    await ok('DELETE', `/v1/hosts/${host}`);
    assert.equal((await get(uuid)).hosts.length, 2);
    await ok('POST', `${path}/actions/detach-cluster`, { clusterUuid: infra.cluster });
    ps = await get(uuid);
    assert.deepEqual(ps.clusterUuids, []);
    assert.deepEqual(ps.hosts, []);
    assert.equal(ps.capacityTotal, 0);
  });

  test('attaching while hosts join the cluster: every host ends with exactly one share', async () => {
    const zone = await buildInfra(t.admin, 0, 'st-race');
    const uuid = (
      await ok('POST', '/v1/primary-storages', {
        name: 'local-race',
        zoneUuid: zone.zone,
        type: 'local',
        url: '/x',
        capacity: TiB,
      })
    ).resourceUuid;
    const [attached, ...hosts] = await Promise.all([
      t.admin.job('POST', `/v1/primary-storages/${uuid}/actions/attach-cluster`, {
        clusterUuid: zone.cluster,
      }),
      ...Array.from({ length: 20 }, (_, i) =>
        t.admin.job('POST', '/v1/hosts', {
          name: `st-race-${i}`,
          clusterUuid: zone.cluster,
          managementIp: `10.77.0.${i + 1}`,
        }),
      ),
    ]);
    assert.equal(attached.state, 'Succeeded');
    assert.ok(hosts.every((h) => h.state === 'Succeeded'));
    const ps = await get(uuid);
    assert.deepEqual(
      ps.hosts.map((h: any) => h.hostUuid),
      hosts.map((h) => h.resourceUuid).sort(),
    );
    assert.equal(ps.capacityTotal, 20 * TiB);
  });

  test('attach refuses a cluster of another zone or an unknown one, naming clusterUuid', async () => {
    const uuid = (await create({ name: 'nfs-zone', type: 'nfs', capacity: TiB })).resourceUuid;
    const other = await buildInfra(t.admin, 0, 'st-other');
    const wrong = await t.admin.post(`/v1/primary-storages/${uuid}/actions/attach-cluster`, {
      clusterUuid: other.cluster,
    });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.code, 'PRIMARY_STORAGE_ZONE_MISMATCH');
    assert.deepEqual(fieldsOf(wrong.body), ['clusterUuid']);
    const unknown = await t.admin.post(`/v1/primary-storages/${uuid}/actions/attach-cluster`, {
      clusterUuid: newId(),
    });
    assert.equal(unknown.body.error.code, 'CLUSTER_NOT_FOUND');
    assert.deepEqual((await get(uuid)).clusterUuids, []);
  });

  test('enable / disable / maintain', async () => {
    const uuid = (await create({ name: 'ceph-1', type: 'ceph', url: 'ceph://pool', capacity: TiB }))
      .resourceUuid;
    for (const [action, state] of [
      ['maintain', 'Maintenance'],
      ['disable', 'Disabled'],
      ['enable', 'Enabled'],
    ]) {
      assert.equal(
        (await ok('POST', `/v1/primary-storages/${uuid}/actions/${action}`, {})).result.state,
        state,
      );
    }
  });

  test('detach is refused while VMs of the cluster have volumes on it; delete while it has clusters, volumes or cached images', async () => {
    const uuid = (await create({ name: 'shared-busy', type: 'shared-mount', capacity: TiB })).resourceUuid;
    const path = `/v1/primary-storages/${uuid}`;
    await ok('POST', `${path}/actions/attach-cluster`, { clusterUuid: infra.cluster });
    const attached = await t.admin.delete(path);
    assert.equal(attached.status, 409);
    assert.equal(attached.body.error.code, 'PRIMARY_STORAGE_HAS_CLUSTERS');
    // a VM of the cluster with a volume on the storage (rows as the VM chains write them)
    const account = (await t.admin.get('/v1/accounts?q=name=admin')).body.items[0].uuid;
    const vm = newId();
    const volume = newId();
    await t.db.db
      .insertInto('vms')
      .values({
        uuid: vm,
        name: 'vm',
        accountUuid: account,
        cpu: 1,
        memory: GiB,
        state: 'Running',
        clusterUuid: infra.cluster,
      })
      .execute();
    await t.db.db
      .insertInto('volumes')
      .values({
        uuid: volume,
        name: 'root',
        accountUuid: account,
        type: 'Root',
        vmUuid: vm,
        primaryStorageUuid: uuid,
        size: GiB,
        state: 'Ready',
      })
      .execute();
    const busy = await t.admin.post(`${path}/actions/detach-cluster`, { clusterUuid: infra.cluster });
    assert.equal(busy.status, 202);
    const job = (await t.admin.get(`/v1/jobs/${busy.body.uuid}?wait=true`)).body;
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'PRIMARY_STORAGE_IN_USE');
    assert.deepEqual((await get(uuid)).clusterUuids, [infra.cluster]);
    // the VM gone elsewhere: the volume no longer keeps the cluster, but still keeps the storage
    await t.db.db.updateTable('volumes').set({ vmUuid: null }).where('uuid', '=', volume).execute();
    await ok('POST', `${path}/actions/detach-cluster`, { clusterUuid: infra.cluster });
    assert.equal((await t.admin.delete(path)).body.error.code, 'PRIMARY_STORAGE_HAS_VOLUMES');
    await t.db.db.deleteFrom('volumes').where('uuid', '=', volume).execute();
    await t.db.db.deleteFrom('vms').where('uuid', '=', vm).execute();
    // a cached image keeps it too, until the cache is cleaned
    await t.db.db
      .insertInto('imageCache')
      .values({
        uuid: newId(),
        primaryStorageUuid: uuid,
        hostUuid: null,
        imageUuid: newId(),
        size: GiB,
        state: 'Ready',
        path: '/x',
      })
      .execute();
    await t.db.db
      .updateTable('primaryStorages')
      .set({ capacityUsed: GiB })
      .where('uuid', '=', uuid)
      .execute();
    assert.equal((await t.admin.delete(path)).body.error.code, 'PRIMARY_STORAGE_HAS_IMAGE_CACHE');
    const cleaned = await ok('POST', `${path}/actions/clean-image-cache`, {});
    assert.deepEqual(cleaned.result, { removed: 1, kept: 0 });
    assert.equal((await get(uuid)).capacityUsed, 0);
    await ok('DELETE', path);
    assert.equal((await t.admin.get(path)).status, 404);
  });
});
