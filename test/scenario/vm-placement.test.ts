/**
 * Placement through the API: hints (zone, cluster, host — admin only — and primary storage),
 * affinity groups hard and soft (also under concurrency), a request nothing can hold failing
 * with the scheduler's explanation, the stop policy (a stopped VM holds no host; one on local
 * storage starts again on its own host), and live migration (shared storage only, within the
 * cluster, the scheduler's pick or a given host).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, createVm, GiB, runningVm, simVmOf, type VmEnv, vmOf } from './vm-env.js';

let t: TestNode;
let local: VmEnv;
let nfs: VmEnv;
let tenant: Api;

before(async () => {
  t = await startTestNode();
  local = await buildVmEnv(t, { hosts: 3, prefix: 'pl', hostMemory: 32 * GiB });
  nfs = await buildVmEnv(t, { hosts: 3, prefix: 'pn', storage: 'nfs', hostMemory: 32 * GiB });
  await t.admin.job('POST', '/v1/accounts', { name: 'pl-tenant', password: 'tenant-password' });
  tenant = await t.anon.login('pl-tenant', 'tenant-password');
});
after(() => t.stop());

const hostsOf = async (uuids: string[]) => Promise.all(uuids.map(async (u) => (await vmOf(t, u))!.hostUuid));

describe('hints', () => {
  test('zone, cluster, host and primary storage hints are obeyed', async () => {
    for (const hint of [
      { zoneUuid: nfs.zone },
      { clusterUuid: nfs.cluster },
      { primaryStorageUuid: nfs.ps },
    ]) {
      const vm = await vmOf(t, await runningVm(t, local, hint));
      assert.equal(vm?.clusterUuid, nfs.cluster, JSON.stringify(hint));
    }
    const target = local.hosts[2]!;
    for (let i = 0; i < 3; i++)
      assert.equal((await vmOf(t, await runningVm(t, local, { hostUuid: target })))?.hostUuid, target);
  });

  test('only the admin may name a host', async () => {
    const res = await tenant.post('/v1/vms', {
      name: 'x',
      imageUuid: local.image,
      instanceOfferingUuid: local.small,
      hostUuid: local.hosts[0],
    });
    assert.equal(res.status, 403);
  });

  test('a request no host can hold fails with the scheduler’s explanation, leaving nothing', async () => {
    const job = await createVm(t, local, {
      instanceOfferingUuid: undefined,
      cpu: 4,
      memory: 64 * GiB,
      clusterUuid: local.cluster,
    });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'NO_HOST_AVAILABLE');
    assert.match(job.error.message, /no host with 64 GiB free memory/);
    assert.equal(await vmOf(t, job.resourceUuid), undefined);
    await assertInvariants(t.db.db);
  });

  test('every bad field is named at once, and nothing is created', async () => {
    const res = await t.admin.post('/v1/vms', {
      name: 'bad',
      imageUuid: '01a1fd00-0000-7000-8000-000000000000',
      instanceOfferingUuid: local.small,
      cpu: 2,
      dataDiskOfferingUuids: ['01a1fd00-0000-7000-8000-000000000001'],
      affinityGroupUuid: '01a1fd00-0000-7000-8000-000000000002',
      clusterUuid: '01a1fd00-0000-7000-8000-000000000003',
    });
    assert.equal(res.status, 400);
    const fields = res.body.error.details.fields.map((f: { field: string }) => f.field).sort();
    assert.deepEqual(fields, [
      'affinityGroupUuid',
      'clusterUuid',
      'cpu',
      'dataDiskOfferingUuids[0]',
      'imageUuid',
    ]);
    const small = await t.admin.post('/v1/vms', {
      name: 'tiny-root',
      imageUuid: local.image,
      instanceOfferingUuid: local.small,
      rootDiskSize: GiB,
    });
    assert.equal(small.status, 400);
    assert.match(small.body.error.message, /rootDiskSize: .* smaller than the image needs/);
    const disabled = await t.admin.job('POST', '/v1/instance-offerings', {
      name: 'off',
      cpu: 1,
      memory: GiB,
    });
    await t.admin.job('POST', `/v1/instance-offerings/${disabled.resourceUuid}/actions/disable`, {});
    const refused = await t.admin.post('/v1/vms', {
      name: 'x',
      imageUuid: local.image,
      instanceOfferingUuid: disabled.resourceUuid,
    });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /is Disabled/);
    assert.equal((await t.admin.get('/v1/vms?q=name=bad&count=true')).body.total, 0);
  });
});

describe('affinity groups', () => {
  const group = async (policy: string, enforcement: string) =>
    (
      await tenant.job('POST', '/v1/affinity-groups', {
        name: `${policy}-${enforcement}-${Math.random()}`,
        policy,
        enforcement,
      })
    ).resourceUuid as string;
  const tenantVm = (extra: Record<string, unknown>) =>
    tenant.job('POST', '/v1/vms', {
      name: `g-${Math.random().toString(36).slice(2)}`,
      imageUuid: local.image,
      instanceOfferingUuid: local.small,
      ...extra,
    });

  test('hard anti-affinity: one host each, even when created at once; one too many is refused', async () => {
    const g = await group('anti-affinity', 'hard');
    const jobs = await Promise.all(
      [0, 1, 2].map(() => tenantVm({ affinityGroupUuid: g, clusterUuid: local.cluster })),
    );
    assert.ok(
      jobs.every((j) => j.state === 'Succeeded'),
      JSON.stringify(jobs.map((j) => j.error)),
    );
    const hosts = await hostsOf(jobs.map((j) => j.resourceUuid));
    assert.equal(new Set(hosts).size, 3);
    const fourth = await tenantVm({ affinityGroupUuid: g, clusterUuid: local.cluster });
    assert.equal(fourth.state, 'Failed');
    assert.equal(fourth.error.code, 'NO_HOST_AVAILABLE');
    assert.match(fourth.error.message, /anti-affinity/);
    const blocked = await tenant.call('DELETE', `/v1/affinity-groups/${g}`);
    assert.equal(blocked.status, 409);
    assert.equal(blocked.body.error.code, 'AFFINITY_GROUP_HAS_VMS');
  });

  test('hard affinity: all on one host, even when created at once', async () => {
    const g = await group('affinity', 'hard');
    const jobs = await Promise.all([0, 1, 2, 3].map(() => tenantVm({ affinityGroupUuid: g })));
    assert.ok(
      jobs.every((j) => j.state === 'Succeeded'),
      JSON.stringify(jobs.map((j) => j.error)),
    );
    assert.equal(new Set(await hostsOf(jobs.map((j) => j.resourceUuid))).size, 1);
  });

  test('soft anti-affinity: spread while it can, placed anyway when it cannot', async () => {
    const g = await group('anti-affinity', 'soft');
    const vms: string[] = [];
    for (let i = 0; i < 4; i++) {
      const job = await tenantVm({ affinityGroupUuid: g, clusterUuid: local.cluster });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job.error));
      vms.push(job.resourceUuid);
    }
    const hosts = await hostsOf(vms);
    assert.equal(new Set(hosts.slice(0, 3)).size, 3, 'the first three on three hosts');
    assert.equal(new Set(hosts).size, 3, 'the fourth shares a host');
    await assertInvariants(t.db.db);
  });
});

describe('the stop policy and local storage', () => {
  test('create-stopped: volumes made, no host held; it starts on the host of its local disk', async () => {
    const job = await createVm(t, local, { strategy: 'create-stopped', clusterUuid: local.cluster });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const vm = await vmOf(t, job.resourceUuid);
    assert.deepEqual([vm?.state, vm?.hostUuid, vm?.powerState], ['Stopped', null, 'Stopped']);
    const root = await t.db.db
      .selectFrom('volumes')
      .selectAll()
      .where('uuid', '=', vm!.rootVolumeUuid!)
      .executeTakeFirstOrThrow();
    assert.equal(root.hostUuid, vm?.lastHostUuid, 'the local root volume is on the host it was placed on');
    assert.equal(await simVmOf(t, vm!.uuid), undefined, 'never started');
    // whatever the weights say, its disk decides
    const start = await t.admin.job('POST', `/v1/vms/${vm!.uuid}/actions/start`, {});
    assert.equal(start.state, 'Succeeded', JSON.stringify(start));
    assert.equal((await vmOf(t, vm!.uuid))?.hostUuid, root.hostUuid);
    await assertInvariants(t.db.db);
  });

  test('a stopped VM on local storage cannot start when its host has no room, and says why', async () => {
    const uuid = await runningVm(t, local, {
      instanceOfferingUuid: local.medium,
      clusterUuid: local.cluster,
    });
    const { hostUuid } = (await vmOf(t, uuid))!;
    await t.admin.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
    const h = await t.db.db
      .selectFrom('hosts')
      .selectAll()
      .where('uuid', '=', hostUuid!)
      .executeTakeFirstOrThrow();
    // another VM takes all the memory the host has left
    const free = h.memoryTotal - GiB - h.memoryUsed;
    const hog = await createVm(t, local, { instanceOfferingUuid: undefined, cpu: 1, memory: free, hostUuid });
    assert.equal(hog.state, 'Succeeded', JSON.stringify(hog));
    const start = await t.admin.job('POST', `/v1/vms/${uuid}/actions/start`, {});
    assert.equal(start.state, 'Failed');
    assert.equal(start.error.code, 'NO_HOST_AVAILABLE');
    assert.match(start.error.message, /memory/);
    assert.deepEqual([(await vmOf(t, uuid))?.state, (await vmOf(t, uuid))?.hostUuid], ['Stopped', null]);
    await t.admin.job('DELETE', `/v1/vms/${hog.resourceUuid}`);
    const again = await t.admin.job('POST', `/v1/vms/${uuid}/actions/start`, {});
    assert.equal(again.state, 'Succeeded');
    assert.equal((await vmOf(t, uuid))?.hostUuid, hostUuid);
  });
});

describe('live migration', () => {
  test('the scheduler picks another host of the cluster; the capacity moves with the VM', async () => {
    const uuid = await runningVm(t, nfs, { clusterUuid: nfs.cluster });
    const from = (await vmOf(t, uuid))!.hostUuid!;
    const job = await t.admin.job('POST', `/v1/vms/${uuid}/actions/migrate`, {});
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const vm = await vmOf(t, uuid);
    assert.notEqual(vm?.hostUuid, from);
    assert.equal(vm?.clusterUuid, nfs.cluster);
    const to = await t.db.db
      .selectFrom('hosts')
      .select('managementIp')
      .where('uuid', '=', vm!.hostUuid!)
      .executeTakeFirstOrThrow();
    assert.equal((await simVmOf(t, uuid))?.hostAddress, to.managementIp, 'the hypervisor moved it');
    await assertInvariants(t.db.db);
  });

  test('to a given host; refused for local storage, another cluster, the same host, or a tenant', async () => {
    const uuid = await runningVm(t, nfs, { clusterUuid: nfs.cluster });
    const from = (await vmOf(t, uuid))!.hostUuid!;
    const target = nfs.hosts.find((h) => h !== from)!;
    const job = await t.admin.job('POST', `/v1/vms/${uuid}/actions/migrate`, { hostUuid: target });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal((await vmOf(t, uuid))?.hostUuid, target);
    const same = await t.admin.post(`/v1/vms/${uuid}/actions/migrate`, { hostUuid: target });
    assert.equal(same.body.error.code, 'VM_ALREADY_ON_HOST');
    const other = await t.admin.post(`/v1/vms/${uuid}/actions/migrate`, { hostUuid: local.hosts[0] });
    assert.equal(other.body.error.code, 'HOST_IN_OTHER_CLUSTER');
    const onLocal = await runningVm(t, local, { clusterUuid: local.cluster });
    const refused = await t.admin.post(`/v1/vms/${onLocal}/actions/migrate`, {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'VM_ON_LOCAL_STORAGE');
    const mine = (
      await tenant.job('POST', '/v1/vms', {
        name: 'tm',
        imageUuid: nfs.image,
        instanceOfferingUuid: nfs.small,
      })
    ).resourceUuid;
    assert.equal((await tenant.post(`/v1/vms/${mine}/actions/migrate`, {})).status, 403);
  });
});
