/**
 * Host maintenance survives a SIGKILL of its management node: the node is killed while the
 * maintain job waits for its live migrations; after the restart the maintain chain resumes (the
 * interrupted vm.migrate jobs roll back, the evacuation submits them again) and ends with every
 * VM Running on another host, the host in Maintenance, capacity invariants holding.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import { CRASH_PASSWORD, crashHarness, noBackendsOf, unfinished, waitUntil } from './crash-fixtures.js';
import { buildVmEnv, GiB, runningVm } from './vm-env.js';

const harness = crashHarness();
after(() => harness.cleanup());

test('SIGKILL while a host is being evacuated: after the restart the maintain job finishes the moves', async () => {
  const { db, observer, url, start } = await harness.setup(`maint-crash-${process.pid}`);
  const first = start();
  await first.healthy();
  const api = await new Api(url).login('admin', CRASH_PASSWORD);
  const t = { admin: api, db: observer } as unknown as TestNode;
  const env = await buildVmEnv(t, { hosts: 3, prefix: 'mc', storage: 'nfs', hostMemory: 32 * GiB });
  const host = env.hosts[0]!;
  const vms: string[] = [];
  for (let i = 0; i < 5; i++) vms.push(await runningVm(t, env, { hostUuid: host }));
  const slow = await api.post('/v1/simulator/faults', { point: 'command:vm.migrate', delayMs: 3000 });
  assert.equal(slow.status, 201);
  const submitted = await api.post(`/v1/hosts/${host}/actions/maintain`, {});
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  const maintain = submitted.body.uuid as string;
  await waitUntil('a migration in flight', async () => {
    const moving = await observer.db
      .selectFrom('vms')
      .select('uuid')
      .where('hostUuid', '=', host)
      .where('state', '=', 'Migrating')
      .execute();
    return moving.length > 0;
  });
  await first.killHard();
  await noBackendsOf(observer, db.name);

  const second = start();
  await second.ready();
  await waitUntil(
    'every job to end',
    async () => (await unfinished(observer)).length === 0,
    120_000,
    () => second.tail(),
  );
  const job = await observer.db
    .selectFrom('jobs')
    .select(['state', 'error'])
    .where('uuid', '=', maintain)
    .executeTakeFirstOrThrow();
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  const hostRow = await observer.db
    .selectFrom('hosts')
    .select('state')
    .where('uuid', '=', host)
    .executeTakeFirstOrThrow();
  assert.equal(hostRow.state, 'Maintenance');
  const after = await observer.db
    .selectFrom('vms')
    .select(['uuid', 'state', 'hostUuid', 'migrationTargetUuid'])
    .where('uuid', 'in', vms)
    .execute();
  for (const vm of after) {
    assert.equal(vm.state, 'Running', JSON.stringify(vm));
    assert.notEqual(vm.hostUuid, host);
    assert.equal(vm.migrationTargetUuid, null);
  }
  // the interrupted moves were rolled back and made again
  const interrupted = await observer.db
    .selectFrom('jobs')
    .select('uuid')
    .where('kind', '=', 'vm.migrate')
    .where('state', '=', 'Failed')
    .execute();
  assert.ok(interrupted.length > 0, 'the kill interrupted a migration');
  await assertInvariants(observer.db);
});
