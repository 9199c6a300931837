/**
 * Host HA on simulated hosts (docs/hosts.md "Host HA"): a host stops answering → Disconnected →
 * fenced (its simulated machine powered off) → its VMs of HA level restart-on-host-failure run
 * on another host with the same UUID, NICs and addresses, and volumes; VMs without HA stay
 * Unknown; a VM on local storage is reported not recoverable. When the host comes back it runs
 * none of the moved VMs (a stale copy is destroyed), and nothing fails back. A fence that fails
 * restarts nothing, says why and is tried again. restart-on-failure restarts a guest that died on
 * its host. Bad HA levels are refused naming the field.
 * The reconciler's passes are called directly (no timing): three silent passes disconnect a host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { assertInvariants } from '../support/invariants.js';
import { fieldsOf, startTestNode, type TestNode } from '../support/node.js';
import { addressesOf, buildNetEnv, type NetEnv, nicsOf } from './network-fixtures.js';
import { clearFaults, fault, GiB, ok, runningVm, simVmOf, vmOf } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let vms: VmService;
let localPs: string;

before(async () => {
  // the reconciler's passes are the test's to call: the periodic one is pushed out of the way
  t = await startTestNode({ settings: { hostFenceRetrySeconds: 0.2, reconcileIntervalSeconds: 3600 } });
  env = await buildNetEnv(t, { hosts: 4, prefix: 'ha', storage: 'nfs', hostMemory: 32 * GiB });
  vms = t.node.kindServices.find((s) => s.contract.kind === 'vms') as VmService;
  localPs = (
    await ok(t, 'POST', '/v1/primary-storages', {
      name: 'ha-local',
      zoneUuid: env.zone,
      type: 'local',
      url: '/var/lib/nimbus/ha-local',
      capacity: 1024 * GiB,
    })
  ).resourceUuid;
  await ok(t, 'POST', `/v1/primary-storages/${localPs}/actions/attach-cluster`, { clusterUuid: env.cluster });
  const on = await t.admin.job('PATCH', `/v1/clusters/${env.cluster}`, { hostHa: true });
  assert.equal(on.state, 'Succeeded', JSON.stringify(on));
});
after(() => t.stop());

const hostOf = (uuid: string) =>
  t.db.db.selectFrom('hosts').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();

const simHost = async (uuid: string) => {
  const ip = (await hostOf(uuid)).managementIp;
  return t.db.db.selectFrom('simulatorHosts').selectAll().where('address', '=', ip).executeTakeFirstOrThrow();
};

const volumesOf = (vm: string) =>
  t.db.db
    .selectFrom('volumes')
    .select(['uuid', 'primaryStorageUuid'])
    .where('vmUuid', '=', vm)
    .orderBy('uuid')
    .execute();

const haVm = (extra: Record<string, unknown> = {}) =>
  runningVm(t, env, { l3NetworkUuids: [env.l3], haLevel: 'restart-on-host-failure', ...extra });

/** The host stops answering; three reconcile passes make it Disconnected and submit its recovery. */
async function silence(host: string): Promise<void> {
  const ip = (await hostOf(host)).managementIp;
  await fault(t, { point: 'command:vm.list', host: ip, error: { code: 'HOST_UNREACHABLE' } });
  for (let i = 0; i < 3; i++) await vms.reconciler.reconcileAll();
  assert.equal((await hostOf(host)).status, 'Disconnected');
}

async function recoveryJob(host: string) {
  return t.db.db
    .selectFrom('jobs')
    .selectAll()
    .where('kind', '=', 'host.ha-recover')
    .where('resourceUuid', '=', host)
    .orderBy('createdAt', 'desc')
    .executeTakeFirstOrThrow();
}

async function finished(jobUuid: string) {
  for (;;) {
    const res = await t.admin.get(`/v1/jobs/${jobUuid}?wait=true`);
    if (!['Pending', 'Running'].includes(res.body.state)) return res.body;
  }
}

async function hostEvents(host: string, type: string) {
  return t.db.db
    .selectFrom('events')
    .select('data')
    .where('resourceUuid', '=', host)
    .where('type', '=', type)
    .orderBy('id')
    .execute();
}

async function waitForVmJobs(vm: string) {
  const jobs = await t.db.db.selectFrom('jobs').select('uuid').where('resourceUuid', '=', vm).execute();
  for (const j of jobs) await finished(j.uuid);
}

describe('a host that stops answering in a cluster with host HA', () => {
  const failed = () => env.hosts[0]!;
  let moved: string;
  let plain: string;
  let local: string;
  let movedTo: string;

  test('is fenced; its HA VMs run elsewhere as they were, the others stay Unknown, a local one is reported', async () => {
    const host = failed();
    moved = await haVm({ hostUuid: host });
    plain = await runningVm(t, env, { hostUuid: host, l3NetworkUuids: [env.l3] });
    local = await haVm({ hostUuid: host, primaryStorageUuid: localPs });
    const before = {
      nics: (await nicsOf(t, moved)).map((n) => [n.uuid, n.mac, n.l3NetworkUuid]),
      ips: (await addressesOf(t, moved)).map((a) => a.ip),
      volumes: await volumesOf(moved),
    };
    assert.equal(before.ips.length, 1);

    await silence(host);
    const job = await finished((await recoveryJob(host)).uuid);
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));

    const fenced = await hostOf(host);
    assert.ok(fenced.fencedAt, 'the host is marked fenced');
    assert.equal((await simHost(host)).facts.poweredOff, true, 'the fence powered the machine off');
    assert.equal((await hostEvents(host, 'host.ha.fenced'))[0]?.data.method, 'simulator');

    const vm = (await vmOf(t, moved))!;
    assert.equal(vm.state, 'Running');
    assert.ok(vm.hostUuid && vm.hostUuid !== host, 'running on another host');
    movedTo = vm.hostUuid;
    assert.equal((await simVmOf(t, moved))?.hostAddress, (await hostOf(movedTo)).managementIp);
    assert.deepEqual(
      {
        nics: (await nicsOf(t, moved)).map((n) => [n.uuid, n.mac, n.l3NetworkUuid]),
        ips: (await addressesOf(t, moved)).map((a) => a.ip),
        volumes: await volumesOf(moved),
      },
      before,
      'same NICs, addresses and volumes',
    );
    assert.deepEqual(
      (await nicsOf(t, moved)).map((n) => n.hostUuid),
      [movedTo],
    );
    const restarted = await hostEvents(host, 'host.ha.vm-restarted');
    assert.deepEqual(
      restarted.map((e) => e.data.vmUuid),
      [moved],
    );

    assert.deepEqual([(await vmOf(t, plain))?.state, (await vmOf(t, plain))?.hostUuid], ['Unknown', host]);
    assert.deepEqual([(await vmOf(t, local))?.state, (await vmOf(t, local))?.hostUuid], ['Unknown', host]);
    const lost = await hostEvents(host, 'host.ha.vm-not-recoverable');
    assert.deepEqual(
      lost.map((e) => e.data.vmUuid),
      [local],
    );
    assert.match(String(lost[0]!.data.reason), /local storage/);
    assert.equal(job.result.restarted.length, 1);
    await assertInvariants(t.db.db);
  });

  test('a silent host already fenced is not fenced again', async () => {
    await vms.reconciler.reconcileAll();
    const jobs = await t.db.db
      .selectFrom('jobs')
      .select('uuid')
      .where('kind', '=', 'host.ha-recover')
      .where('resourceUuid', '=', failed())
      .execute();
    assert.equal(jobs.length, 1);
  });

  test('back, the fenced host runs none of the moved VMs; nothing fails back', async () => {
    const host = failed();
    const ip = (await hostOf(host)).managementIp;
    // the simulated world holds one copy of a VM: the moved VM's copy is lent to the returning
    // host (a guest its fence did not stop), and given back to its new host after the check
    const copy = (await simVmOf(t, moved))!;
    await t.db.db.updateTable('simulatorVms').set({ hostAddress: ip }).where('vmUuid', '=', moved).execute();
    await clearFaults(t);
    // the new host misses this one pass (one failure is not a disconnection): only the
    // returning host's answer decides what happens to the copy
    await fault(t, {
      point: 'command:vm.list',
      host: (await hostOf(movedTo)).managementIp,
      error: { code: 'HOST_UNREACHABLE' },
      times: 1,
    });
    assert.equal((await t.admin.post(`/v1/simulator/hosts/${ip}/actions/power-on`, {})).status, 200);
    const report = await vms.reconciler.reconcileAll();
    assert.ok(report.reconnected.includes(host));
    const back = await hostOf(host);
    assert.deepEqual([back.status, back.fencedAt], ['Connected', null]);
    assert.equal(await simVmOf(t, moved), undefined, 'the stale copy was destroyed on the returning host');
    const repaired = await t.db.db
      .selectFrom('events')
      .select('data')
      .where('resourceUuid', '=', moved)
      .where('type', '=', 'vm.drift.repaired')
      .execute();
    assert.equal(repaired[0]?.data.action, 'destroyed stale copy');
    await t.db.db
      .insertInto('simulatorVms')
      .values({ ...copy })
      .execute();

    await vms.reconciler.reconcileAll();
    const vm = (await vmOf(t, moved))!;
    assert.deepEqual([vm.state, vm.hostUuid], ['Running', movedTo], 'no fail-back');
    // the VM without HA: its guest died with the host → Stopped, not restarted
    assert.deepEqual([(await vmOf(t, plain))?.state, (await vmOf(t, plain))?.hostUuid], ['Stopped', null]);
    // the local-storage VM (restart-on-host-failure includes restart-on-failure) starts again on its host
    await waitForVmJobs(local);
    assert.deepEqual([(await vmOf(t, local))?.state, (await vmOf(t, local))?.hostUuid], ['Running', host]);
    const onReturned = await t.db.db
      .selectFrom('simulatorVms')
      .select('vmUuid')
      .where('hostAddress', '=', ip)
      .execute();
    assert.deepEqual(
      onReturned.map((r) => r.vmUuid),
      [local],
      'it runs only its own local VM',
    );
    await assertInvariants(t.db.db);
  });
});

describe('an HA VM busy when its host is recovered', () => {
  test('is left as it is, and once idle a second recovery moves it without fencing again', async () => {
    const host = env.hosts[1]!;
    const busy = await haVm({ hostUuid: host });
    // an operation in flight, as its admission marks it (its job would end with the host gone)
    await t.db.db.updateTable('vms').set({ task: 'reboot' }).where('uuid', '=', busy).execute();
    await silence(host);
    const first = await finished((await recoveryJob(host)).uuid);
    assert.equal(first.state, 'Succeeded', JSON.stringify(first));
    // (HA VMs moved here by the tests before are restarted elsewhere again: only the busy one stays)
    assert.ok(!first.result.restarted.includes(busy));
    assert.equal((await vmOf(t, busy))?.hostUuid, host, 'a busy VM is not taken');
    await t.db.db.updateTable('vms').set({ task: null }).where('uuid', '=', busy).execute();
    await vms.reconciler.reconcileAll();
    const second = await recoveryJob(host);
    assert.notEqual(second.uuid, first.uuid);
    assert.equal((await finished(second.uuid)).state, 'Succeeded');
    const vm = (await vmOf(t, busy))!;
    assert.equal(vm.state, 'Running');
    assert.notEqual(vm.hostUuid, host);
    assert.equal((await hostEvents(host, 'host.ha.fenced')).length, 1, 'fenced once');
    await vms.reconciler.reconcileAll();
    const jobs = await t.db.db
      .selectFrom('jobs')
      .select('uuid')
      .where('kind', '=', 'host.ha-recover')
      .where('resourceUuid', '=', host)
      .execute();
    assert.equal(jobs.length, 2, 'nothing left behind: no third recovery');
    await clearFaults(t);
  });
});

describe('a fence that fails', () => {
  test('restarts nothing, says why, and is tried again until it succeeds', async () => {
    const host = env.hosts[2]!;
    const ip = (await hostOf(host)).managementIp;
    const vm = await haVm({ hostUuid: host });
    const bmc = await t.admin.post('/v1/simulator/faults', {
      point: 'command:fence',
      host: ip,
      error: { code: 'BMC_UNREACHABLE', message: 'no answer from the BMC' },
    });
    assert.equal(bmc.status, 201);
    await silence(host);
    const job = await recoveryJob(host);
    for (;;) {
      if ((await hostEvents(host, 'host.ha.fence-failed')).length >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const failures = await hostEvents(host, 'host.ha.fence-failed');
    assert.equal(failures[0]!.data.code, 'BMC_UNREACHABLE');
    assert.match(String(failures[0]!.data.reason), /no answer from the BMC; nothing is restarted/);
    assert.deepEqual([(await vmOf(t, vm))?.state, (await vmOf(t, vm))?.hostUuid], ['Unknown', host]);
    assert.equal((await hostOf(host)).fencedAt, null);
    assert.notEqual((await simHost(host)).facts.poweredOff, true);
    const starts = await t.db.db
      .selectFrom('jobs')
      .select('uuid')
      .where('resourceUuid', '=', vm)
      .where('kind', '=', 'vm.start')
      .execute();
    assert.deepEqual(starts, [], 'nothing restarted');
    assert.equal(
      (
        await t.db.db
          .selectFrom('jobs')
          .select('state')
          .where('uuid', '=', job.uuid)
          .executeTakeFirstOrThrow()
      ).state,
      'Running',
    );

    // the BMC answers again (the host stays silent)
    assert.equal((await t.admin.delete(`/v1/simulator/faults/${bmc.body.uuid}`)).status, 204);
    const done = await finished(job.uuid);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    const after = (await vmOf(t, vm))!;
    assert.equal(after.state, 'Running');
    assert.notEqual(after.hostUuid, host);
    await clearFaults(t);
  });
});

describe('VM HA levels', () => {
  test('restart-on-failure: a guest that died is started again on its host; none stays Stopped', async () => {
    const host = env.hosts[3]!;
    const guarded = await runningVm(t, env, { hostUuid: host, haLevel: 'restart-on-failure' });
    const unguarded = await runningVm(t, env, { hostUuid: host });
    for (const uuid of [guarded, unguarded])
      assert.equal((await t.admin.post(`/v1/simulator/vms/${uuid}/state`, { state: 'Absent' })).status, 200);
    await vms.reconciler.reconcileAll();
    await waitForVmJobs(guarded);
    assert.deepEqual(
      [(await vmOf(t, guarded))?.state, (await vmOf(t, guarded))?.hostUuid],
      ['Running', host],
    );
    assert.equal((await simVmOf(t, guarded))?.state, 'Running');
    assert.deepEqual(
      [(await vmOf(t, unguarded))?.state, (await vmOf(t, unguarded))?.hostUuid],
      ['Stopped', null],
    );
    await assertInvariants(t.db.db);
  });

  test('a level is set on create and by PATCH; a bad one is refused naming the field, nothing changed', async () => {
    const vm = await runningVm(t, env, { hostUuid: env.hosts[3]! });
    assert.equal((await t.admin.get(`/v1/vms/${vm}`)).body.haLevel, 'none');
    const bad = await t.admin.patch(`/v1/vms/${vm}`, { haLevel: 'always' });
    assert.equal(bad.status, 400);
    assert.deepEqual(fieldsOf(bad.body), ['haLevel']);
    assert.equal((await vmOf(t, vm))?.haLevel, 'none');
    const set = await t.admin.job('PATCH', `/v1/vms/${vm}`, { haLevel: 'restart-on-host-failure' });
    assert.equal(set.state, 'Succeeded');
    assert.equal((await t.admin.get(`/v1/vms/${vm}`)).body.haLevel, 'restart-on-host-failure');
    const badCreate = await t.admin.post('/v1/vms', {
      name: 'ha-bad',
      imageUuid: env.image,
      instanceOfferingUuid: env.small,
      haLevel: 'sometimes',
    });
    assert.equal(badCreate.status, 400);
    assert.deepEqual(fieldsOf(badCreate.body), ['haLevel']);
    const badCluster = await t.admin.patch(`/v1/clusters/${env.cluster}`, { hostHa: 'yes' });
    assert.equal(badCluster.status, 400);
    assert.deepEqual(fieldsOf(badCluster.body), ['hostHa']);
  });
});
