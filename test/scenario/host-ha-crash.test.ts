/**
 * Host HA survives a SIGKILL of its management node: the node is killed while the recovery of
 * a fenced host waits for the restarts of its HA VMs (slowed down); after the restart the
 * `host.ha-recover` chain resumes — the interrupted starts are rolled back and submitted again —
 * and ends with every HA VM Running on another host. The host is fenced once, not again.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import { CRASH_PASSWORD, crashHarness, noBackendsOf, unfinished, waitUntil } from './crash-fixtures.js';
import { buildNetEnv } from './network-fixtures.js';
import { GiB, runningVm } from './vm-env.js';

const harness = crashHarness();
after(() => harness.cleanup());

// passes every second, a failed fence tried again every second: the test waits on states, not time
const SETTINGS = JSON.stringify({ reconcileIntervalSeconds: 1, hostFenceRetrySeconds: 1 });

test('SIGKILL while a fenced host’s VMs restart elsewhere: after the restart the recovery finishes', async () => {
  const { db, observer, url, start } = await harness.setup(`ha-crash-${process.pid}`);
  const first = start({ NIMBUS_SETTINGS: SETTINGS });
  await first.healthy();
  const api = await new Api(url).login('admin', CRASH_PASSWORD);
  const t = { admin: api, db: observer } as unknown as TestNode;
  const env = await buildNetEnv(t, { hosts: 3, prefix: 'hc', storage: 'nfs', hostMemory: 32 * GiB });
  assert.equal((await api.job('PATCH', `/v1/clusters/${env.cluster}`, { hostHa: true })).state, 'Succeeded');
  const host = env.hosts[0]!;
  const vms: string[] = [];
  for (let i = 0; i < 3; i++)
    vms.push(
      await runningVm(t, env, {
        hostUuid: host,
        l3NetworkUuids: [env.l3],
        haLevel: 'restart-on-host-failure',
      }),
    );
  const ip = (
    await observer.db
      .selectFrom('hosts')
      .select('managementIp')
      .where('uuid', '=', host)
      .executeTakeFirstOrThrow()
  ).managementIp;
  for (const spec of [
    { point: 'command:vm.start', delayMs: 3000 },
    { point: 'command:vm.list', host: ip, error: { code: 'HOST_UNREACHABLE' } },
  ])
    assert.equal((await api.post('/v1/simulator/faults', spec)).status, 201);

  const recovery = await waitUntil(
    'an HA restart in flight',
    async () => {
      const starts = await observer.db
        .selectFrom('jobs')
        .select('uuid')
        .where('kind', '=', 'vm.start')
        .where('requestId', 'like', 'host-ha-%')
        .where('state', '=', 'Running')
        .execute();
      if (starts.length === 0) return undefined;
      return observer.db
        .selectFrom('jobs')
        .select('uuid')
        .where('kind', '=', 'host.ha-recover')
        .where('resourceUuid', '=', host)
        .executeTakeFirstOrThrow();
    },
    90_000,
    () => first.tail(),
  );
  await first.killHard();
  await noBackendsOf(observer, db.name);

  const second = start({ NIMBUS_SETTINGS: SETTINGS });
  await second.ready();
  await waitUntil(
    'every job to end',
    async () => (await unfinished(observer)).length === 0,
    120_000,
    () => second.tail(),
  );
  const job = await observer.db
    .selectFrom('jobs')
    .select(['state', 'error', 'result'])
    .where('uuid', '=', recovery.uuid)
    .executeTakeFirstOrThrow();
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  const after = await observer.db
    .selectFrom('vms')
    .select(['uuid', 'state', 'hostUuid'])
    .where('uuid', 'in', vms)
    .execute();
  for (const vm of after) {
    assert.equal(vm.state, 'Running', JSON.stringify(vm));
    assert.notEqual(vm.hostUuid, host);
  }
  const interrupted = await observer.db
    .selectFrom('jobs')
    .select('uuid')
    .where('kind', '=', 'vm.start')
    .where('requestId', 'like', 'host-ha-%')
    .where('state', '=', 'Failed')
    .execute();
  assert.ok(interrupted.length > 0, 'the kill interrupted a restart');
  const fences = await observer.db
    .selectFrom('events')
    .select('id')
    .where('resourceUuid', '=', host)
    .where('type', '=', 'host.ha.fenced')
    .execute();
  assert.equal(fences.length, 1, 'fenced once');
  const recoveries = await observer.db
    .selectFrom('jobs')
    .select('uuid')
    .where('kind', '=', 'host.ha-recover')
    .execute();
  assert.equal(recoveries.length, 1, 'one recovery, resumed');
  await assertInvariants(observer.db);
});
