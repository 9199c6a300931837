/**
 * The health scanner on simulated hosts (shared NFS storage, so a VM can move): a leased VM that
 * crashed is restarted; when the restart fails it is rebuilt from its image; when its host fails
 * it again it is started on another host; when everything fails the lease is marked Unhealable
 * and its holder told. Faults come from the simulator (a VM stopped behind the platform's back,
 * `vm.start` failing on a host); the test runs the scan passes itself.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { addressOfHost, buildNetEnv, type NetEnv } from './network-fixtures.js';
import { makePool, poolCounts, poolService, tenantWithUsers, until } from './pool-fixtures.js';
import { clearFaults, fault, GiB, vmOf } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let holder: Api | undefined;
let pool: string;

const WARM = 3;

before(async () => {
  t = await startTestNode({
    settings: {
      poolStockIntervalSeconds: 1,
      healthScanIntervalSeconds: 3600,
      reconcileIntervalSeconds: 3600,
    },
  });
  env = await buildNetEnv(t, {
    hosts: 3,
    hostCpu: 64,
    hostMemory: 256 * GiB,
    prefix: 'heal',
    storage: 'nfs',
  });
  [holder] = (await tenantWithUsers(t, 'healers', 1)).users;
  // no burst growth here: the test takes VMs one by one and counts on a steady warm stock
  pool = await makePool(t, env, {
    name: 'heal-pool',
    warmTarget: WARM,
    cap: 10,
    perUserLimit: 10,
    burstThreshold: 1000,
  });
});

after(async () => {
  await t?.stop();
});

/** the pool full and quiet: no create in flight that an injected fault could hit instead */
beforeEach(async () => {
  await until(
    'the pool to be full and quiet',
    () => poolCounts(t, pool),
    (c) => c.Ready === WARM && c.Provisioning === 0 && c.Discarding === 0,
    120_000,
  );
});

const vms = () => t.node.kindServices.find((s) => s.contract.kind === 'vms') as unknown as VmService;

/** A VM taken from the pool: its lease, uuid and host. */
async function take(): Promise<{ lease: string; vm: string; host: string }> {
  const job = await holder!.job('POST', `/v1/pools/${pool}/actions/allocate`, {});
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  await until(
    'the pool to refill',
    () => poolCounts(t, pool),
    (c) => c.Ready === WARM && c.Provisioning === 0,
    120_000,
  );
  return { lease: job.resourceUuid, vm: job.result.vm.uuid, host: job.result.vm.hostUuid };
}

/** The VM dies behind the platform's back; the reconciler finds it Stopped. */
async function crash(vm: string): Promise<void> {
  const res = await t.admin.post(`/v1/simulator/vms/${vm}/state`, { state: 'Stopped' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await vms().reconciler.reconcileAll();
  assert.equal((await vmOf(t, vm))?.state, 'Stopped');
}

const leaseRow = (lease: string) =>
  t.db.db.selectFrom('leases').selectAll().where('uuid', '=', lease).executeTakeFirstOrThrow();

/** Scan passes until the lease is no longer Healing; its heal events, in order, as `type stage/op`. */
async function healUntilSettled(lease: string): Promise<string[]> {
  await until(
    'the health scanner to settle',
    async () => {
      await poolService(t).healthScan(true);
      return (await leaseRow(lease)).health;
    },
    (h) => h !== 'Healing',
    120_000,
  );
  const events = await t.db.db
    .selectFrom('events')
    .select(['type', 'data', 'accountUuid'])
    .where('resourceUuid', '=', lease)
    .where('type', 'like', 'lease.%heal%')
    .orderBy('id')
    .execute();
  return events.map((e) => {
    const d = e.data as { stage?: string; operation?: string; by?: string };
    return [e.type, d.stage ?? d.by, d.operation].filter(Boolean).join(' ');
  });
}

test('a crashed VM is restarted on its host', async () => {
  const { lease, vm, host } = await take();
  await crash(vm);
  const steps = await healUntilSettled(lease);
  assert.deepEqual(steps, ['lease.heal.started', 'lease.heal.attempt restart start', 'lease.healed restart']);
  const row = await vmOf(t, vm);
  assert.equal(row?.state, 'Running');
  assert.equal(row?.hostUuid, host, 'restarted where it was');
  assert.equal((await leaseRow(lease)).health, 'Healthy');
  // the holder reads the story among its own events
  const told = await holder!.get(`/v1/events?q=resourceUuid=${lease}&limit=100`);
  assert.equal(told.status, 200, JSON.stringify(told.body));
  assert.ok(
    (told.body.items as Array<{ type: string }>).some((e) => e.type === 'lease.healed'),
    JSON.stringify(told.body),
  );
});

test('a VM whose restart fails is rebuilt from its image (a fresh root disk), then started', async () => {
  const { lease, vm, host } = await take();
  const oldRoot = (await vmOf(t, vm))!.rootVolumeUuid;
  await fault(t, { point: 'command:vm.start', host: await addressOfHost(t, host), times: 1 });
  await crash(vm);
  const steps = await healUntilSettled(lease);
  assert.deepEqual(steps, [
    'lease.heal.started',
    'lease.heal.attempt restart start',
    'lease.heal.failed restart',
    'lease.heal.attempt rebuild rebuild',
    'lease.heal.attempt rebuild start',
    'lease.healed rebuild',
  ]);
  const row = await vmOf(t, vm);
  assert.equal(row?.state, 'Running');
  assert.equal(row?.hostUuid, host);
  assert.notEqual(row?.rootVolumeUuid, oldRoot, 'a new root volume');
  const volumes = await t.db.db
    .selectFrom('volumes')
    .select(['uuid', 'vmUuid', 'deviceId', 'state'])
    .where('uuid', 'in', [oldRoot!, row!.rootVolumeUuid!])
    .execute();
  assert.deepEqual(
    volumes.map((v) => ({ ...v })),
    [{ uuid: row!.rootVolumeUuid, vmUuid: vm, deviceId: 0, state: 'Ready' }],
    'the old root volume is gone, the new one is the root',
  );
  await clearFaults(t);
});

test('a VM its host keeps failing is moved to another host after the restart and the rebuild fail', async () => {
  const { lease, vm, host } = await take();
  await fault(t, { point: 'command:vm.start', host: await addressOfHost(t, host) });
  await crash(vm);
  const steps = await healUntilSettled(lease);
  await clearFaults(t);
  assert.deepEqual(steps, [
    'lease.heal.started',
    'lease.heal.attempt restart start',
    'lease.heal.failed restart',
    'lease.heal.attempt rebuild rebuild',
    'lease.heal.attempt rebuild start',
    'lease.heal.failed rebuild',
    'lease.heal.attempt migrate start',
    'lease.healed migrate',
  ]);
  const row = await vmOf(t, vm);
  assert.equal(row?.state, 'Running');
  assert.ok(row?.hostUuid && row.hostUuid !== host, 'it runs on another host now');
});

test('a VM nothing heals: the lease is marked Unhealable and its holder told', async () => {
  const { lease, vm } = await take();
  await fault(t, { point: 'command:vm.start' });
  await crash(vm);
  const steps = await healUntilSettled(lease);
  await clearFaults(t);
  assert.equal(steps.at(-1), 'lease.unhealable');
  assert.deepEqual(
    steps.filter((s) => s.startsWith('lease.heal.failed')),
    ['lease.heal.failed restart', 'lease.heal.failed rebuild', 'lease.heal.failed migrate'],
  );
  const row = await leaseRow(lease);
  assert.equal(row.health, 'Unhealable');
  assert.equal(row.state, 'Active', 'the lease itself lives on: its holder decides');
  const shown = await holder!.get(`/v1/leases/${lease}`);
  assert.equal(shown.body.health, 'Unhealable');
  const told = await t.db.db
    .selectFrom('events')
    .select('accountUuid')
    .where('resourceUuid', '=', lease)
    .where('type', '=', 'lease.unhealable')
    .executeTakeFirstOrThrow();
  assert.equal(told.accountUuid, row.accountUuid, 'the event is the holder’s');
  // later passes leave it alone
  const again = await poolService(t).healthScan(true);
  assert.equal(again.attempts, 0);
  // its holder brings it back (the fault is gone): the mark goes
  const started = await holder!.job('POST', `/v1/vms/${vm}/actions/start`, {});
  assert.equal(started.state, 'Succeeded', JSON.stringify(started));
  await poolService(t).healthScan(true);
  assert.equal((await leaseRow(lease)).health, 'Healthy');
});

test('a VM its holder stopped is left stopped', async () => {
  const { lease, vm } = await take();
  const stop = await holder!.job('POST', `/v1/vms/${vm}/actions/stop`, {});
  assert.equal(stop.state, 'Succeeded', JSON.stringify(stop));
  const pass = await poolService(t).healthScan(true);
  assert.equal(pass.started, 0);
  assert.equal((await leaseRow(lease)).health, 'Healthy');
  assert.equal((await vmOf(t, vm))?.state, 'Stopped');
});
