/**
 * A lost database connection never ends the node (issue 8, item 2). Under a burst of VM creates
 * (shared storage: one image copy, every other create waiting for it), the test terminates the
 * node's busy backends several times (`pg_terminate_backend`, what a failover or an admin does),
 * and, on a PostgreSQL of its own, restarts the database mid-burst. Each time the node process
 * survives, keeps serving, and every job ends Succeeded or Failed-and-cleanly-rolled-back, with
 * no row left transitional and the invariants holding.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext, test } from 'node:test';
import { type EmbeddedDatabase, freePort, startEmbeddedDatabase } from '../../src/db/embedded.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import {
  CRASH_PASSWORD,
  crashHarness,
  jobsOf,
  ServerProcess,
  sleep,
  summary,
  unfinished,
  waitUntil,
} from './crash-fixtures.js';
import { buildVmEnv, GiB, type VmEnv } from './vm-env.js';

const BURST = 80;
const END_BOUND_MS = 120_000;

const harness = crashHarness();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  await harness.cleanup();
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function burst(api: Api, env: VmEnv, prefix: string): Promise<string[]> {
  for (const fault of [
    { point: 'command:image.cache', delayMs: 1500 },
    { point: 'command:vm.start', delayMs: 200 },
  ]) {
    const res = await api.post('/v1/simulator/faults', fault);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const accepted = await Promise.all(
    Array.from({ length: BURST }, (_, i) =>
      api.post('/v1/vms', { name: `${prefix}-${i}`, imageUuid: env.image, instanceOfferingUuid: env.small }),
    ),
  );
  for (const r of accepted) assert.equal(r.status, 202, JSON.stringify(r.body));
  return accepted.map((r) => r.body.uuid as string);
}

/** Every job ended cleanly, nothing transitional, the invariants hold, and the node still serves. */
async function assertEndedCleanly(
  t: TestContext,
  observer: DbHandle,
  node: ServerProcess,
  api: () => Promise<Api>,
  env: VmEnv,
): Promise<void> {
  let open: unknown[] = [];
  await waitUntil(
    'every job to end',
    async () => {
      if (!node.running) assert.fail(`the node process died${node.tail()}`);
      open = await unfinished(observer);
      return open.length === 0;
    },
    END_BOUND_MS,
    () => `\nstill open: ${JSON.stringify(summary(open as never[]))}${node.tail()}`,
  );
  const jobs = await jobsOf(observer);
  t.diagnostic(`jobs: ${JSON.stringify(summary(jobs.filter((j) => j.kind === 'vm.create')))}`);
  for (const j of jobs) {
    assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.kind} ${j.uuid} ended ${j.state}`);
    if (j.state === 'Failed') {
      assert.equal(j.flow?.phase, 'rollback', `failed ${j.uuid} was rolled back`);
      assert.deepEqual(j.flow?.done, [], `failed ${j.uuid}: every done step undone`);
      assert.equal(
        j.error?.details?.rollbackFailures,
        undefined,
        `${j.uuid} rolled back cleanly: ${JSON.stringify(j.error)}`,
      );
    }
  }
  const caches = await observer.db
    .selectFrom('imageCache')
    .select(['state'])
    .where('state', '!=', 'Ready')
    .execute();
  assert.deepEqual(caches, [], 'no image-cache entry left Downloading or Deleting');
  await assertInvariants(observer.db);
  assert.ok(node.running, 'the node process survived');
  const health = await fetch(`${node.url}/v1/health`);
  assert.equal(health.status, 200, 'healthy');
  const again = await (await api()).job('POST', '/v1/vms', {
    name: `after-${Date.now()}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(again.state, 'Succeeded', `the node still takes work: ${JSON.stringify(again)}`);
}

test('terminating the node’s busy backends under load: the node survives and every job ends cleanly', async (t) => {
  const { db, observer, url, start } = await harness.setup('conn-loss');
  const node = start();
  await node.ready(120_000);
  const api = await new Api(url).login('admin', CRASH_PASSWORD);
  const env = await buildVmEnv({ admin: api } as unknown as TestNode, {
    prefix: 'connloss',
    hosts: 8,
    hostCpu: 128,
    hostMemory: 512 * GiB,
    storage: 'nfs',
    capacity: 8192 * GiB,
  });
  await burst(api, env, 'loss');
  let terminated = 0;
  for (let i = 0; i < 6; i++) {
    await sleep(400 + Math.floor(Math.random() * 500));
    const { rows } = await observer.pool.query(
      `select count(*)::int as n from (
         select pg_terminate_backend(pid) from pg_stat_activity
         where application_name like 'nimbus node %' and datname = $1 and pid <> pg_backend_pid()) k`,
      [db.name],
    );
    terminated += rows[0].n;
    assert.ok(node.running, `the node survived termination ${i + 1}${node.tail()}`);
  }
  t.diagnostic(`terminated ${terminated} backends in 6 rounds`);
  assert.ok(terminated >= 6, 'backends were terminated while busy');
  await assertEndedCleanly(t, observer, node, () => new Api(url).login('admin', CRASH_PASSWORD), env);
  assert.equal(await node.interrupt(), 0, 'SIGINT stops the node cleanly');
});

test('restarting the database under load: the node reconnects and every job ends cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-pgrestart-'));
  chmodSync(dir, 0o755); // the postgres user must reach the data directory below it
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let pg: EmbeddedDatabase | undefined = await startEmbeddedDatabase(join(dir, 'db'), () => {}, { port });
  cleanups.push(async () => pg?.stop());
  const observer = openDb(pg.url, { max: 2, applicationName: 'restart-test-observer' });
  cleanups.push(() => observer.close());
  const nodePort = await freePort();
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  const node = new ServerProcess(
    [
      ...['--database-url', pg.url, '--data-dir', join(dir, 'node'), '--host', '127.0.0.1'],
      ...['--port', String(nodePort), '--no-demo', '--log-file', join(dir, 'nimbus.log')],
    ],
    nodeUrl,
  );
  cleanups.push(() => node.killHard());
  await node.ready(120_000);
  const api = await new Api(nodeUrl).login('admin', CRASH_PASSWORD);
  const env = await buildVmEnv({ admin: api } as unknown as TestNode, {
    prefix: 'pgrestart',
    hosts: 8,
    hostCpu: 128,
    hostMemory: 512 * GiB,
    storage: 'nfs',
    capacity: 8192 * GiB,
  });
  await burst(api, env, 'restart');
  await sleep(800);
  const before = await unfinished(observer);
  t.diagnostic(`restarting the database with ${before.length} jobs open`);
  await pg.stop();
  pg = undefined;
  await sleep(1500);
  assert.ok(node.running, `the node survived the database going away${node.tail()}`);
  const down = await fetch(`${nodeUrl}/v1/health`);
  assert.equal(down.status, 503, 'health says the database is unreachable');
  pg = await startEmbeddedDatabase(join(dir, 'db'), () => {}, { port });
  await assertEndedCleanly(t, observer, node, () => new Api(nodeUrl).login('admin', CRASH_PASSWORD), env);
  assert.equal(await node.interrupt(), 0, 'SIGINT stops the node cleanly');
});
