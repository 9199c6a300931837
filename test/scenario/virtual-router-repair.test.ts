/**
 * Virtual routers repaired without an operator (docs/network.md "Virtual routers"): a router
 * whose appliance VM was stopped is started again by the next VM that needs it — once, however
 * many VMs arrive — and re-sent its whole configuration; a failed start fails the waiting VM and
 * the next VM starts it again; the router service's periodic pass keeps Running/Stopped in step
 * with the appliance and settles a router left Creating after its appliance job finished.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jobValues } from '../../src/engine/jobs.js';
import type { RouterService } from '../../src/resources/network/virtual-router/service.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, succeed, tenant, vmOn, vrL3 } from './router-fixtures.js';
import { clearFaults, fault } from './vm-env.js';

let t: TestNode;
let env: RouterEnv;
let alice: { api: Api; uuid: string };
let routers: RouterService;

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'vrr', hosts: 3 });
  alice = await tenant(t, 'vrr-alice');
  routers = t.node.kindServices.find((s) => s.contract.kind === 'virtual-routers') as RouterService;
});
after(() => t.stop());

const routerOf = (l3: string) =>
  t.db.db.selectFrom('virtualRouters').selectAll().where('l3NetworkUuid', '=', l3).executeTakeFirstOrThrow();
const applied = (routerUuid: string) => t.node.services.deps.simulator.networks.router(routerUuid);
const vmState = async (uuid: string) =>
  (await t.db.db.selectFrom('vms').select('state').where('uuid', '=', uuid).executeTakeFirstOrThrow()).state;
const startJobs = async (vmUuid: string) =>
  t.db.db
    .selectFrom('jobs')
    .select(['uuid', 'state'])
    .where('kind', '=', 'vm.start')
    .where('resourceUuid', '=', vmUuid)
    .execute();
const createVm = (name: string, l3: string) =>
  alice.api.job('POST', '/v1/vms', {
    name,
    imageUuid: env.image,
    cpu: 1,
    memory: 64 * 1024 ** 2,
    l3NetworkUuids: [l3],
  });

/** a virtual-router L3 with one VM, hence a Running router; its appliance stopped through the API */
async function stoppedRouter(name: string) {
  const { l3 } = await vrL3(env, alice.api, name);
  const first = await vmOn(t, env, alice.api, [l3]);
  const router = await routerOf(l3);
  assert.equal(router.state, 'Running');
  const version = applied(router.uuid)!.version;
  await succeed(t.admin, 'POST', `/v1/vms/${router.vmUuid}/actions/stop`, {});
  assert.equal(await vmState(router.vmUuid!), 'Stopped');
  return { l3, first, router, version };
}

/** the router serves again: Running and Connected, its appliance Running, its config re-sent with every NIC of the L3 */
async function assertServing(l3: string, before: { uuid: string; vmUuid: string | null }, version: number) {
  const router = await routerOf(l3);
  assert.equal(router.uuid, before.uuid, 'the same router');
  assert.equal(router.vmUuid, before.vmUuid, 'the same appliance');
  assert.equal(router.state, 'Running');
  assert.equal(router.status, 'Connected');
  assert.equal(await vmState(router.vmUuid!), 'Running');
  const sent = applied(router.uuid)!;
  assert.ok(sent.version > version, `the configuration was re-sent (${sent.version} > ${version})`);
  assert.equal(Number(router.configVersion), sent.version);
  const nics = await t.db.db
    .selectFrom('vmNics')
    .select('uuid')
    .where('l3NetworkUuid', '=', l3)
    .where('vmUuid', '<>', router.vmUuid!)
    .orderBy('uuid')
    .execute();
  assert.deepEqual(
    sent.state.dhcp.map((e) => e.nicUuid).sort(),
    nics.map((n) => n.uuid),
    'one DHCP entry per VM NIC on the L3',
  );
  return router;
}

describe('a stopped router', () => {
  test('is marked Stopped by the settle pass, then started by the next VM and re-sent its configuration', async () => {
    const { l3, router, version } = await stoppedRouter('vrr-one');
    assert.equal((await routerOf(l3)).state, 'Running', 'stopping the VM does not touch the router row');
    await routers.settle();
    const stopped = await routerOf(l3);
    assert.equal(stopped.state, 'Stopped');
    assert.equal(stopped.status, 'Disconnected');
    assert.equal((await alice.api.get(`/v1/virtual-routers/${router.uuid}`)).body.state, 'Stopped');

    const vm = await vmOn(t, env, alice.api, [l3]);
    await assertServing(l3, router, version);
    assert.ok(applied(router.uuid)!.state.dhcp.some((e) => e.nicUuid === vm.nics[0]!.uuid));
    const starts = await startJobs(router.vmUuid!);
    assert.deepEqual(
      starts.map((j) => j.state),
      ['Succeeded'],
      'one start of the appliance',
    );
  });

  test('20 VMs created at once while its appliance is stopped start it exactly once, and all succeed', async () => {
    const { l3, router, version } = await stoppedRouter('vrr-burst');
    const jobs = await Promise.all(Array.from({ length: 20 }, (_, i) => createVm(`vrr-burst-${i}`, l3)));
    assert.deepEqual(
      jobs.filter((j) => j.state !== 'Succeeded').map((j) => j.error),
      [],
      'every create succeeded',
    );
    await assertServing(l3, router, version);
    const starts = await startJobs(router.vmUuid!);
    assert.equal(starts.length, 1, `one vm.start of the appliance: ${JSON.stringify(starts)}`);
    assert.equal(starts[0]!.state, 'Succeeded');
  });

  test('a VM started while the appliance is stopped starts it too', async () => {
    const { l3, first, router, version } = await stoppedRouter('vrr-vm-start');
    await succeed(alice.api, 'POST', `/v1/vms/${first.vm}/actions/stop`, {});
    await succeed(alice.api, 'POST', `/v1/vms/${first.vm}/actions/start`, {});
    await assertServing(l3, router, version);
    assert.equal((await startJobs(router.vmUuid!)).length, 1);
  });

  test('a start that fails fails the waiting VM with VIRTUAL_ROUTER_FAILED; the next VM starts it', async () => {
    const { l3, router, version } = await stoppedRouter('vrr-fail');
    await fault(t, {
      point: 'step:vm.start/start-on-host',
      times: 1,
      error: { code: 'APPLIANCE_BOOT_FAILED' },
    });
    try {
      const job = await createVm('vrr-fail-vm', l3);
      assert.equal(job.state, 'Failed', JSON.stringify(job));
      assert.equal(job.error.code, 'VIRTUAL_ROUTER_FAILED');
      assert.equal(job.error.details.l3NetworkUuid, l3);
    } finally {
      await clearFaults(t);
    }
    const stopped = await routerOf(l3);
    assert.equal(stopped.state, 'Stopped');
    assert.equal(stopped.jobUuid, null, 'the failed start’s claim was cleared');
    assert.equal(await vmState(router.vmUuid!), 'Stopped');

    await vmOn(t, env, alice.api, [l3]);
    await assertServing(l3, router, version);
    assert.deepEqual((await startJobs(router.vmUuid!)).map((j) => j.state).sort(), ['Failed', 'Succeeded']);
  });

  test('started by an admin, it is marked Running by the settle pass and re-sent its configuration', async () => {
    const { l3, router, version } = await stoppedRouter('vrr-admin');
    await routers.settle();
    assert.equal((await routerOf(l3)).state, 'Stopped');
    await succeed(t.admin, 'POST', `/v1/vms/${router.vmUuid}/actions/start`, {});
    assert.equal((await routerOf(l3)).state, 'Stopped', 'starting the VM does not touch the router row');
    await Promise.all([routers.settle(), routers.settle()]);
    await assertServing(l3, router, version);
  });
});

describe('the settle pass', () => {
  test('settles a router left Creating after its appliance job succeeded: Running with its addresses, configuration sent', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vrr-settle');
    await vmOn(t, env, alice.api, [l3]);
    const made = await routerOf(l3);
    const version = applied(made.uuid)!.version;
    const job = await t.db.db
      .selectFrom('jobs')
      .select('state')
      .where('uuid', '=', made.jobUuid!)
      .executeTakeFirstOrThrow();
    assert.equal(job.state, 'Succeeded', 'the row names its appliance’s create job');
    // what a node that died between the job's end and its waiter's look leaves behind
    await t.db.db
      .updateTable('virtualRouters')
      .set({ state: 'Creating', status: 'Connecting', guestIp: null, publicIp: null, managementIp: null })
      .where('uuid', '=', made.uuid)
      .execute();
    // concurrent passes (several nodes) settle it once
    await Promise.all([routers.settle(), routers.settle()]);
    const settled = await assertServing(l3, made, version);
    assert.equal(settled.guestIp, made.guestIp);
    assert.equal(settled.publicIp, made.publicIp);
    assert.equal(settled.managementIp, made.managementIp);
    assert.ok(settled.guestIp && settled.publicIp && settled.managementIp);
  });

  test('turns a router left Creating after its appliance job failed to Error; one still running is left alone', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vrr-settle-failed');
    await vmOn(t, env, alice.api, [l3]);
    const made = await routerOf(l3);
    const job = (state: 'Running' | 'Failed') => ({
      ...jobValues(
        { kind: 'vm.create', accountUuid: alice.uuid, queueKey: `test:${made.uuid}` },
        t.node.nodeId,
      ),
      state,
    });
    const running = job('Running');
    const failed = job('Failed');
    await t.db.db.insertInto('jobs').values([running, failed]).execute();
    const creating = (jobUuid: string) =>
      t.db.db
        .updateTable('virtualRouters')
        .set({ state: 'Creating', status: 'Connecting', jobUuid })
        .where('uuid', '=', made.uuid)
        .execute();
    await creating(running.uuid);
    await routers.settle();
    assert.equal((await routerOf(l3)).state, 'Creating', 'its job has not finished');
    await creating(failed.uuid);
    await routers.settle();
    const settled = await routerOf(l3);
    assert.equal(settled.state, 'Error');
    assert.equal(settled.status, 'Disconnected');
    await t.db.db.deleteFrom('jobs').where('uuid', 'in', [running.uuid, failed.uuid]).execute();
  });
});
