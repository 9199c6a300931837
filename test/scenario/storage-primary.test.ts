/**
 * Primary storages through the API: validation, admin-only refusals, capacity as the API shows
 * it (local storage: sums over per-host shares), attach/detach (one share per host, also for hosts
 * added later or joining during the attach), updates, states and delete refusals.
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
      url: 'nfs://10.0.0.5/x',
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
          url: 'nfs://10.0.0.5/x',
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
    const uuid = (await create({ name: 'nfs-zone', type: 'nfs', url: 'nfs://10.0.0.5/zone', capacity: TiB }))
      .resourceUuid;
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
    const uuid = (await create({ name: 'ceph-1', type: 'ceph', url: 'rbd:pool', capacity: TiB }))
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
