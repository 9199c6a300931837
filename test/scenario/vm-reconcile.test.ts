/**
 * The reconciler repairs drift both ways, changed behind the platform's back through the
 * simulator's admin API: a VM that stopped (or vanished) on its host becomes Stopped and gives
 * its capacity back; a VM the host runs while the platform says Stopped becomes Running and
 * takes capacity on that host; a host that stops answering goes Disconnected and its VMs
 * Unknown, then Connected again with its VMs as the host reports them; a VM with an operation
 * in flight is left alone. Every repair is on the event record.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { assertInvariants } from '../support/invariants.js';
import { startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, clearFaults, fault, runningVm, simVmOf, type VmEnv, vmOf } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let vms: VmService;

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { hosts: 2, prefix: 'rc' });
  vms = t.node.kindServices.find((s) => s.contract.kind === 'vms') as VmService;
});
after(() => t.stop());

async function drift(uuid: string, state: 'Running' | 'Stopped' | 'Paused' | 'Absent') {
  const res = await t.admin.post(`/v1/simulator/vms/${uuid}/state`, { state });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

const hostOf = (uuid: string) =>
  t.db.db.selectFrom('hosts').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();

async function repairs(uuid: string): Promise<Array<Record<string, unknown>>> {
  const res = await t.admin.get(
    `/v1/events?q=resourceUuid=${uuid}&q=type=vm.state.changed&sort=-id&limit=20`,
  );
  return res.body.items
    .map((e: { data: Record<string, unknown> }) => e.data)
    .filter((d: { reason?: string }) => d.reason);
}

describe('drift on a connected host', () => {
  test('the host says Stopped, the platform Running → Stopped, capacity given back', async () => {
    const uuid = await runningVm(t, env);
    const { hostUuid } = (await vmOf(t, uuid))!;
    const before = await hostOf(hostUuid!);
    await drift(uuid, 'Stopped');
    const report = await vms.reconciler.reconcileAll();
    assert.ok(report.repaired >= 1);
    const vm = await vmOf(t, uuid);
    assert.deepEqual(
      [vm?.state, vm?.powerState, vm?.hostUuid, vm?.lastHostUuid],
      ['Stopped', 'Stopped', null, hostUuid],
    );
    const after = await hostOf(hostUuid!);
    assert.deepEqual([after.cpuUsed, after.vmCount], [before.cpuUsed - 1, before.vmCount - 1]);
    assert.deepEqual((await repairs(uuid))[0], {
      state: 'Stopped',
      powerState: 'Stopped',
      from: 'Running',
      reason: 'drift',
    });
    await assertInvariants(t.db.db);
  });

  test('a pass pages through the hosts: with pages of one host, drift on each is repaired', async () => {
    const a = await runningVm(t, env);
    const b = await runningVm(t, env);
    await drift(a, 'Stopped');
    await drift(b, 'Stopped');
    vms.reconciler.pageSize = 1;
    try {
      const report = await vms.reconciler.reconcileAll();
      const hosts = await t.db.db
        .selectFrom('hosts')
        .select('uuid')
        .where('status', 'in', ['Connected', 'Disconnected'])
        .execute();
      assert.equal(report.hosts, hosts.length);
      assert.ok(hosts.length >= 2);
    } finally {
      vms.reconciler.pageSize = 200;
    }
    assert.deepEqual([(await vmOf(t, a))?.state, (await vmOf(t, b))?.state], ['Stopped', 'Stopped']);
    await assertInvariants(t.db.db);
  });

  test('the VM vanished from its host → Stopped (power state NoState)', async () => {
    const uuid = await runningVm(t, env);
    await drift(uuid, 'Absent');
    await vms.reconciler.reconcileAll();
    const vm = await vmOf(t, uuid);
    assert.deepEqual([vm?.state, vm?.powerState, vm?.hostUuid], ['Stopped', 'NoState', null]);
    // and it starts again, wherever there is room
    const start = await t.admin.job('POST', `/v1/vms/${uuid}/actions/start`, {});
    assert.equal(start.state, 'Succeeded', JSON.stringify(start));
    assert.equal((await simVmOf(t, uuid))?.state, 'Running');
  });

  test('the host runs a VM the platform thinks Stopped → Running, capacity taken on that host', async () => {
    const uuid = await runningVm(t, env);
    const stop = await t.admin.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
    assert.equal(stop.state, 'Succeeded');
    const lastHost = (await vmOf(t, uuid))!.lastHostUuid!;
    const before = await hostOf(lastHost);
    await drift(uuid, 'Running');
    await vms.reconciler.reconcileAll();
    const vm = await vmOf(t, uuid);
    assert.deepEqual([vm?.state, vm?.powerState, vm?.hostUuid], ['Running', 'Running', lastHost]);
    const after = await hostOf(lastHost);
    assert.deepEqual(
      [after.cpuUsed, after.memoryUsed, after.vmCount],
      [before.cpuUsed + 1, before.memoryUsed + vm!.memory, before.vmCount + 1],
    );
    await assertInvariants(t.db.db);
  });

  test('Running ↔ Paused drift follows the host', async () => {
    const uuid = await runningVm(t, env);
    await drift(uuid, 'Paused');
    await vms.reconciler.reconcileAll();
    assert.equal((await vmOf(t, uuid))?.state, 'Paused');
    await drift(uuid, 'Running');
    await vms.reconciler.reconcileAll();
    assert.equal((await vmOf(t, uuid))?.state, 'Running');
  });

  test('a VM with an operation in flight is never touched', async () => {
    const uuid = await runningVm(t, env);
    await fault(t, { point: 'command:vm.reboot', delayMs: 600 });
    try {
      const reboot = await t.admin.post(`/v1/vms/${uuid}/actions/reboot`, {});
      assert.equal(reboot.status, 202);
      await drift(uuid, 'Paused');
      await vms.reconciler.reconcileAll();
      assert.deepEqual([(await vmOf(t, uuid))?.state, (await vmOf(t, uuid))?.task], ['Rebooting', 'reboot']);
      await t.admin.get(`/v1/jobs/${reboot.body.uuid}?wait=true`);
    } finally {
      await clearFaults(t);
    }
    // once idle, the next pass repairs it (the reboot of a paused VM failed and was undone, or
    // succeeded and the host says Paused: either way the platform follows the host)
    await vms.reconciler.reconcileAll();
    const vm = await vmOf(t, uuid);
    assert.equal(vm?.task, null);
    assert.equal(vm?.state, (await simVmOf(t, uuid))?.state);
  });
});

describe('a host that stops answering', () => {
  test('→ Disconnected and its VMs Unknown (capacity kept); back → Connected, VMs as the host says', async () => {
    const host = await hostOf(env.hosts[0]!);
    const a = await runningVm(t, env, { hostUuid: host.uuid });
    const b = await runningVm(t, env, { hostUuid: host.uuid });
    const held = await hostOf(host.uuid);
    // the machine loses power: its VMs are gone, and it no longer answers
    assert.equal(
      (await t.admin.post(`/v1/simulator/hosts/${host.managementIp}/actions/power-off`, {})).status,
      200,
    );
    await fault(t, {
      point: 'command:vm.list',
      host: host.managementIp,
      error: { code: 'HOST_UNREACHABLE' },
    });
    try {
      await vms.reconciler.reconcileAll();
      await vms.reconciler.reconcileAll();
      assert.equal((await hostOf(host.uuid)).status, 'Connected', 'two silences are not yet a disconnection');
      const report = await vms.reconciler.reconcileAll();
      assert.deepEqual(report.disconnected, [host.uuid]);
      assert.equal((await hostOf(host.uuid)).status, 'Disconnected');
      for (const uuid of [a, b])
        assert.deepEqual(
          [(await vmOf(t, uuid))?.state, (await vmOf(t, uuid))?.hostUuid],
          ['Unknown', host.uuid],
        );
      const during = await hostOf(host.uuid);
      assert.deepEqual(
        [during.cpuUsed, during.vmCount],
        [held.cpuUsed, held.vmCount],
        'Unknown VMs keep their capacity',
      );
      const events = await t.admin.get(
        `/v1/events?q=resourceUuid=${host.uuid}&q=type=host.status.changed&sort=-id&limit=1`,
      );
      assert.equal(events.body.items[0].data.status, 'Disconnected');
    } finally {
      await clearFaults(t);
    }
    assert.equal(
      (await t.admin.post(`/v1/simulator/hosts/${host.managementIp}/actions/power-on`, {})).status,
      200,
    );
    const report = await vms.reconciler.reconcileAll();
    assert.deepEqual(report.reconnected, [host.uuid]);
    assert.equal((await hostOf(host.uuid)).status, 'Connected');
    for (const uuid of [a, b]) {
      const vm = await vmOf(t, uuid);
      assert.deepEqual([vm?.state, vm?.hostUuid], ['Stopped', null], 'the power cut stopped them');
    }
    // every VM of the machine went down with it (earlier tests' too): the host holds nothing now
    const after = await hostOf(host.uuid);
    assert.deepEqual([after.cpuUsed, after.memoryUsed, after.vmCount], [0, 0, 0]);
    await assertInvariants(t.db.db);
  });

  test('a VM destroyed while its host was away is destroyed on the host when it returns', async () => {
    const host = await hostOf(env.hosts[1]!);
    const uuid = await runningVm(t, env, { hostUuid: host.uuid });
    await fault(t, {
      point: 'command:vm.list',
      host: host.managementIp,
      error: { code: 'HOST_UNREACHABLE' },
    });
    await fault(t, {
      point: 'command:vm.destroy',
      host: host.managementIp,
      error: { code: 'HOST_UNREACHABLE' },
    });
    try {
      for (let i = 0; i < 3; i++) await vms.reconciler.reconcileAll();
      assert.equal((await vmOf(t, uuid))?.state, 'Unknown');
      const destroyed = await t.admin.job('DELETE', `/v1/vms/${uuid}`);
      assert.equal(destroyed.state, 'Succeeded', JSON.stringify(destroyed));
      assert.deepEqual([(await vmOf(t, uuid))?.state, (await vmOf(t, uuid))?.hostUuid], ['Destroyed', null]);
    } finally {
      await clearFaults(t);
    }
    assert.equal((await simVmOf(t, uuid))?.state, 'Running', 'the host still runs it');
    await vms.reconciler.reconcileAll();
    assert.equal(await simVmOf(t, uuid), undefined, 'the stray was destroyed');
    assert.equal((await vmOf(t, uuid))?.state, 'Destroyed');
    await assertInvariants(t.db.db);
  });
});

describe('a VM that starts while a pass is in flight', () => {
  test('a start that finishes between the hosts answering and the pass deciding is not undone', async () => {
    const uuid = await runningVm(t, env);
    const stopped = await t.admin.job('POST', `/v1/vms/${uuid}/actions/stop`, {});
    assert.equal(stopped.state, 'Succeeded', JSON.stringify(stopped));
    // every host answers vm.list from before the start, and only after the start has finished:
    // the platform's row then says Running, the host's (stale) answer does not have the VM
    type Send = (host: unknown, command: string, body: unknown) => Promise<unknown>;
    const drivers = (vms.reconciler as unknown as { deps: { drivers: { send: Send } } }).deps.drivers;
    const send = drivers.send.bind(drivers);
    let started: Promise<unknown> | undefined;
    drivers.send = async (host, command, body) => {
      const answer = await send(host, command, body);
      if (command !== 'vm.list') return answer;
      started ??= t.admin.job('POST', `/v1/vms/${uuid}/actions/start`, {});
      await started;
      return answer;
    };
    try {
      await vms.reconciler.reconcileAll();
    } finally {
      drivers.send = send;
    }
    assert.equal(((await started) as { state: string }).state, 'Succeeded');
    assert.equal(
      (await vmOf(t, uuid))?.state,
      'Running',
      `the pass left the fresh start alone: ${JSON.stringify(await repairs(uuid))}`,
    );
    assert.equal((await simVmOf(t, uuid))?.state, 'Running');
    await assertInvariants(t.db.db);
  });
});
