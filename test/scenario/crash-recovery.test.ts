/**
 * Crash recovery of a real management node process (DESIGN §3, principles 2 and 4): the server
 * runs as a child process, is killed with SIGKILL while workflow chains are in flight, and is
 * restarted with the same node name. Whatever the kill interrupted must end finished and
 * consistent: rolled back (JOB_INTERRUPTED, nothing half-created) or resumed, never stuck.
 * Also: SIGKILL with the embedded PostgreSQL (the orphaned server is stopped on restart), and a
 * clean SIGINT stop while a slow job runs (bounded drain, the rest left for recovery).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort } from '../../src/db/embedded.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { Api, buildInfra } from '../support/node.js';
import {
  CRASH_PASSWORD,
  isAlive,
  type JobRow,
  jobsOf,
  noBackendsOf,
  ServerProcess,
  sleep,
  unfinished,
  WAIT_MS,
  waitUntil,
} from './crash-fixtures.js';

const PASSWORD = CRASH_PASSWORD;

/** The consistency every scenario ends with, whatever was interrupted. */
async function assertConsistent(observer: DbHandle): Promise<void> {
  const jobs = await jobsOf(observer);
  for (const j of jobs) {
    assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.kind} ${j.uuid} ended ${j.state}`);
    assert.ok(j.flow, `job ${j.kind} ${j.uuid} has a journal`);
    assert.equal(j.flow.current, null, `job ${j.kind} ${j.uuid}: no step left in flight in its journal`);
    if (j.state === 'Failed') {
      assert.equal(j.flow.phase, 'rollback', `failed job ${j.uuid} was rolled back`);
      assert.deepEqual(j.flow.done, [], `failed job ${j.uuid}: every done step was undone`);
      assert.equal(j.error?.details?.rollbackFailures, undefined, `job ${j.uuid} rolled back cleanly`);
    }
  }
  const hosts = await observer.db
    .selectFrom('hosts')
    .select(['uuid', 'managementIp', 'status', 'cpuTotal', 'memoryTotal'])
    .execute();
  const connecting = hosts.filter((h) => h.status === 'Connecting');
  assert.deepEqual(connecting, [], 'no host is left Connecting');
  assert.equal(new Set(hosts.map((h) => h.managementIp)).size, hosts.length, 'no duplicate management IPs');
  const byUuid = new Map(hosts.map((h) => [h.uuid, h]));
  const reconnected = new Set(jobs.filter((x) => x.kind === 'host.reconnect').map((x) => x.resourceUuid));
  for (const j of jobs.filter((x) => x.kind === 'host.create')) {
    const host = byUuid.get(j.resourceUuid!);
    if (j.state === 'Failed') assert.equal(host, undefined, `failed host.create ${j.uuid} left no host row`);
    else {
      // a reconnect after the create decides the status; checked by the caller
      if (!reconnected.has(j.resourceUuid)) {
        assert.equal(host?.status, 'Connected', `host of succeeded create ${j.uuid} is Connected`);
      }
      assert.ok(host, `succeeded create ${j.uuid} has its host row`);
      assert.ok(host.cpuTotal > 0 && host.memoryTotal > 0, `host of ${j.uuid} has its capacity read`);
    }
  }
  const created = new Set(jobs.filter((x) => x.kind === 'host.create').map((x) => x.resourceUuid));
  for (const h of hosts) assert.ok(created.has(h.uuid), `host ${h.uuid} comes from a host.create job`);
}

describe('crash recovery of a management node process', () => {
  const servers: ServerProcess[] = [];
  const databases: TestDatabase[] = [];
  const observers: DbHandle[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const s of servers) await s.killHard().catch(() => {});
    for (const dir of dirs) {
      // an embedded PostgreSQL left behind (by a failed assertion) must not outlive the test
      const pidFile = join(dir, 'pg', 'postmaster.pid');
      if (existsSync(pidFile)) {
        const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
        if (pid > 0 && isAlive(pid)) {
          process.kill(pid, 'SIGINT');
          for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
          if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
    for (const o of observers) await o.close().catch(() => {});
    for (const d of databases) await d.drop().catch(() => {});
  });

  async function setup(nodeName: string, opts: { embedded?: boolean } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-crash-'));
    dirs.push(dir);
    let db: TestDatabase | undefined;
    let observer: DbHandle | undefined;
    if (!opts.embedded) {
      db = await createTestDatabase({ max: 1 });
      databases.push(db);
      // its own application name, so the node's sessions ('nimbus node <uuid>') can be told apart
      observer = openDb(db.url, { max: 3, applicationName: 'crash-test-observer' });
      observers.push(observer);
    }
    const port = await freePort();
    const args = [
      ...(db ? ['--database-url', db.url] : []),
      '--data-dir',
      dir,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--node-name',
      nodeName,
      '--no-demo',
      '--log-file',
      join(dir, 'nimbus.log'),
    ];
    const url = `http://127.0.0.1:${port}`;
    const start = () => {
      const s = new ServerProcess(args, url);
      servers.push(s);
      return s;
    };
    return { dir, db, observer, url, start };
  }

  test('SIGKILL in the middle of host chains: restart rolls back or resumes every one of them', async (t) => {
    const { db, observer, url, start } = await setup('crash-test');
    assert.ok(db && observer);
    const first = start();
    await first.healthy();
    const api = await new Api(url).login('admin', PASSWORD);
    // 8 hosts to reconnect, one more to receive queued updates
    const infra = await buildInfra(api, 9, 'crash');
    const reconnected = infra.hosts.slice(0, 8);
    const updated = infra.hosts[8]!;

    // slow every chain down so the kill finds them at different steps
    for (const fault of [
      { point: 'command:host.connect', delayMs: 3000 },
      { point: 'step:host.create/read-capacity', delayMs: 4000 },
      { point: 'step:host.reconnect/mark-connected', delayMs: 4000 },
      // 10 updates hold the host's queue (parallelism 10); the other 2 stay Pending
      { point: 'step:host.update/apply', delayMs: 60_000 },
    ]) {
      const res = await api.post('/v1/simulator/faults', fault);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const burst = await Promise.all([
      ...Array.from({ length: 40 }, (_, i) =>
        api.post('/v1/hosts', {
          name: `burst-${i}`,
          clusterUuid: infra.cluster,
          managementIp: `10.99.0.${i + 1}`,
        }),
      ),
      ...reconnected.map((h) => api.post(`/v1/hosts/${h}/actions/reconnect`, {})),
      ...Array.from({ length: 12 }, (_, i) => api.patch(`/v1/hosts/${updated}`, { description: `d${i}` })),
    ]);
    for (const r of burst) assert.equal(r.status, 202, JSON.stringify(r.body));

    // kill once many chains run and some of both kinds have already passed the connect step
    await waitUntil(
      'chains in flight past their connect step',
      async () => {
        const open = await unfinished(observer);
        const running = open.filter((j) => j.state === 'Running' && j.flow?.current);
        const pastConnect = (kind: string) =>
          running.some((j) => j.kind === kind && j.flow?.done.includes('connect'));
        if (open.length === 0)
          assert.fail('every job finished before the kill: the faults did not slow them');
        return running.length >= 10 && pastConnect('host.create') && pastConnect('host.reconnect');
      },
      WAIT_MS,
      () => first.tail(),
    );
    await first.killHard();
    await noBackendsOf(observer, db.name);

    const atKill = new Map((await jobsOf(observer)).map((j) => [j.uuid, j]));
    const open = [...atKill.values()].filter((j) => j.state === 'Running' || j.state === 'Pending');
    const summary = (rows: JobRow[]) => {
      const counts: Record<string, number> = {};
      for (const j of rows) {
        const key = `${j.kind} ${j.state}${j.flow?.current ? ` @${j.flow.current}` : ''}`;
        counts[key] = (counts[key] ?? 0) + 1;
      }
      return counts;
    };
    t.diagnostic(`at the kill: ${JSON.stringify(summary(open))}`);
    assert.ok(
      open.filter((j) => j.state === 'Running').length >= 10,
      'the kill left chains Running (it hit them mid-chain)',
    );
    assert.ok(
      open.some((j) => j.state === 'Pending' && j.kind === 'host.update'),
      'the kill left queued jobs Pending',
    );
    const midChainHosts = await observer.db
      .selectFrom('hosts')
      .select('uuid')
      .where('status', '=', 'Connecting')
      .execute();
    assert.ok(midChainHosts.length > 0, 'the kill left hosts Connecting');

    // restart with the same node name: its earlier incarnation is dead at once, its jobs recovered
    const second = start();
    await second.healthy();
    let openNow: JobRow[] = [];
    await waitUntil(
      'no job Pending or Running after the restart',
      async () => {
        openNow = await unfinished(observer);
        return openNow.length === 0;
      },
      WAIT_MS,
      () => `\nstill open: ${JSON.stringify(summary(openNow))}${second.tail()}`,
    );
    const api2 = await new Api(url).login('admin', PASSWORD);
    const count = await api2.get('/v1/jobs?q=state?=Pending,Running&count=true&limit=1');
    assert.equal(count.status, 200, JSON.stringify(count.body));
    assert.equal(count.body.total, 0, 'the API agrees: nothing Pending or Running');

    const final = await jobsOf(observer);
    const wasOpen = (j: JobRow) => ['Running', 'Pending'].includes(atKill.get(j.uuid)?.state ?? '');
    t.diagnostic(`after recovery: ${JSON.stringify(summary(final.filter(wasOpen)))}`);
    for (const j of final) {
      const before = atKill.get(j.uuid)!;
      assert.ok(before, `job ${j.uuid} existed at the kill`);
      if (before.state === 'Running' && (j.kind === 'host.create' || j.kind === 'host.reconnect')) {
        // recovery = rollback: an interrupted chain is undone, never left half-done
        assert.equal(j.state, 'Failed', `interrupted ${j.kind} ${j.uuid} was rolled back`);
        assert.equal(j.error?.code, 'JOB_INTERRUPTED', `interrupted ${j.kind} ${j.uuid} says why`);
      } else if (before.state === 'Running' || before.state === 'Pending') {
        // host.update recovers by resuming; Pending jobs simply run
        assert.equal(j.state, 'Succeeded', `${before.state} ${j.kind} ${j.uuid} finished after the restart`);
      } else {
        assert.equal(j.state, before.state, `finished job ${j.uuid} was left alone`);
      }
      if (j.state === 'Failed') assert.equal(j.error?.code, 'JOB_INTERRUPTED', JSON.stringify(j.error));
    }
    await assertConsistent(observer);

    const hosts = new Map(
      (await observer.db.selectFrom('hosts').select(['uuid', 'status', 'description']).execute()).map((h) => [
        h.uuid,
        h,
      ]),
    );
    for (const j of final.filter((x) => x.kind === 'host.reconnect')) {
      const status = hosts.get(j.resourceUuid!)?.status;
      assert.equal(
        status,
        j.state === 'Succeeded' ? 'Connected' : 'Disconnected',
        `host ${j.resourceUuid} after a ${j.state} reconnect`,
      );
    }
    const updates = final.filter((x) => x.kind === 'host.update');
    assert.equal(updates.length, 12);
    assert.match(
      hosts.get(updated)?.description ?? '',
      /^d\d+$/,
      'the updated host has one of the descriptions',
    );

    assert.equal(await second.interrupt(), 0, 'SIGINT stops the node cleanly');
  });

  test('SIGKILL with the embedded database: the restart stops the orphaned PostgreSQL and keeps the data', async () => {
    const { dir, url, start } = await setup('crash-embedded', { embedded: true });
    const pidFile = join(dir, 'pg', 'postmaster.pid');
    const postmaster = () => Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);

    const first = start();
    await first.healthy(90_000); // the first start runs initdb
    const api = await new Api(url).login('admin', PASSWORD);
    const zone = await api.job('POST', '/v1/zones', { name: 'survives-a-crash' });
    assert.equal(zone.state, 'Succeeded', JSON.stringify(zone));
    const orphan = postmaster();
    assert.ok(isAlive(orphan), 'the embedded PostgreSQL runs');

    await first.killHard();
    assert.ok(isAlive(orphan), 'the embedded PostgreSQL outlives the killed node (an orphan)');

    const second = start();
    await second.healthy(90_000);
    assert.ok(!isAlive(orphan), 'the restart stopped the orphan');
    const restarted = postmaster();
    assert.notEqual(restarted, orphan);
    const api2 = await new Api(url).login('admin', PASSWORD);
    const zones = await api2.get('/v1/zones?q=name=survives-a-crash');
    assert.equal(zones.status, 200, JSON.stringify(zones.body));
    assert.deepEqual(
      zones.body.items.map((z: { uuid: string }) => z.uuid),
      [zone.resourceUuid],
      'the zone created before the crash is still there',
    );

    assert.equal(await second.interrupt(), 0, 'SIGINT stops the node cleanly');
    assert.ok(
      !existsSync(pidFile) || !isAlive(postmaster()),
      'no PostgreSQL is left running for the data directory',
    );
    assert.ok(!isAlive(restarted), 'the embedded PostgreSQL stopped with the node');
  });

  test('SIGINT while slow jobs run: bounded drain, the rest recovered after a restart', async (t) => {
    const { db, observer, url, start } = await setup('drain-test');
    assert.ok(db && observer);
    const first = start();
    await first.healthy();
    const api = await new Api(url).login('admin', PASSWORD);
    const infra = await buildInfra(api, 1, 'drain');
    const existing = await observer.db
      .selectFrom('hosts')
      .select(['uuid', 'managementIp'])
      .where('uuid', '=', infra.hosts[0]!)
      .executeTakeFirstOrThrow();

    // a quick job the drain can finish, and two that outlast its 10 s bound
    for (const fault of [
      { point: 'command:host.connect', host: '10.77.0.1', delayMs: 2000 },
      { point: 'command:host.connect', host: '10.77.0.2', delayMs: 60_000 },
      { point: 'command:host.connect', host: existing.managementIp, delayMs: 60_000 },
    ]) {
      const res = await api.post('/v1/simulator/faults', fault);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const submit = async (path: string, body: unknown) => {
      const res = await api.post(path, body);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.uuid as string;
    };
    const quick = await submit('/v1/hosts', {
      name: 'quick',
      clusterUuid: infra.cluster,
      managementIp: '10.77.0.1',
    });
    const slow = await submit('/v1/hosts', {
      name: 'slow',
      clusterUuid: infra.cluster,
      managementIp: '10.77.0.2',
    });
    const reconnect = await submit(`/v1/hosts/${existing.uuid}/actions/reconnect`, {});
    const ours = [quick, slow, reconnect];
    await waitUntil('the three jobs to be connecting', async () => {
      const rows = (await jobsOf(observer)).filter((j) => ours.includes(j.uuid));
      return rows.length === 3 && rows.every((j) => j.state === 'Running' && j.flow?.current === 'connect');
    });

    assert.equal(await first.interrupt(), 0, 'SIGINT stops the node with exit code 0');
    const nodes = await observer.db.selectFrom('managementNodes').select(['name', 'stoppedAt']).execute();
    assert.ok(
      nodes.every((n) => n.stoppedAt !== null),
      'the node left the cluster (stopped_at set) before exiting',
    );
    const afterStop = new Map((await jobsOf(observer)).map((j) => [j.uuid, j]));
    assert.equal(afterStop.get(slow)?.state, 'Running', 'a job longer than the drain is left for recovery');
    assert.equal(
      afterStop.get(reconnect)?.state,
      'Running',
      'a job longer than the drain is left for recovery',
    );
    const quickAtStop = afterStop.get(quick)!.state;
    assert.ok(['Succeeded', 'Running'].includes(quickAtStop), `quick job ${quickAtStop} at the stop`);
    t.diagnostic(`quick job at the stop: ${quickAtStop} (Succeeded = drained)`);

    const second = start();
    await second.healthy();
    await waitUntil(
      'no job Pending or Running after the restart',
      async () => (await unfinished(observer)).length === 0,
      WAIT_MS,
      () => second.tail(),
    );
    const final = new Map((await jobsOf(observer)).map((j) => [j.uuid, j]));
    for (const uuid of [slow, reconnect]) {
      assert.equal(final.get(uuid)?.state, 'Failed');
      assert.equal(final.get(uuid)?.error?.code, 'JOB_INTERRUPTED');
    }
    if (quickAtStop === 'Succeeded') assert.equal(final.get(quick)?.state, 'Succeeded');
    else assert.equal(final.get(quick)?.error?.code, 'JOB_INTERRUPTED');
    await assertConsistent(observer);
    const host = await observer.db
      .selectFrom('hosts')
      .select(['status', 'cpuTotal'])
      .where('uuid', '=', existing.uuid)
      .executeTakeFirstOrThrow();
    assert.equal(host.status, 'Disconnected', 'the interrupted reconnect left its host Disconnected');
    assert.ok(host.cpuTotal > 0, 'the rollback restored the capacity read before');

    assert.equal(await second.interrupt(), 0, 'SIGINT stops the node cleanly');
  });
});
