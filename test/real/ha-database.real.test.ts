/**
 * The database's primary dies under load (issue 10, item 3; docs/cluster.md "A highly available
 * database"): etcd and two Patroni members (deploy/patroni/patroni.yml as shipped) — a primary and
 * a synchronous standby — and two management nodes on the multi-host URL
 * (`…@h:p1,h:p2/nimbus?target_session_attrs=read-write`). VM creates are fired at both nodes
 * without pause; once some are in flight the primary's postmaster is SIGKILLed. Patroni promotes
 * the standby; the nodes find it and serve again. Then: every create answered 202 (before, during
 * or after the kill) has its job, every job ended Succeeded or Failed with a clean rollback, no
 * row is transitional, the capacity/IP invariants hold, both nodes kept running (neither fenced
 * the other over the database's silence), every answer was a 202 or a retryable 503, and the
 * old primary rejoined as a standby. Run with `npm run test:real -- ha-database` (root, patroni,
 * etcd-server, postgresql-15).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../src/db/embedded.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import { DEAD_AFTER_MS, HEARTBEAT_MS, transitionalRows } from '../scenario/cluster-fixtures.js';
import {
  CRASH_PASSWORD,
  jobsOf,
  ServerProcess,
  sleep,
  summary,
  waitUntil,
} from '../scenario/crash-fixtures.js';
import { buildNetEnv, type NetEnv } from '../scenario/network-fixtures.js';
import { GiB } from '../scenario/vm-env.js';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import { type Member, PatroniLab, patroniSkipReason } from './support/patroni-lab.js';

const skip = patroniSkipReason();
/** at most this many creates (the L3's range has 241 addresses) */
const MAX_CREATES = 200;
/** requests in flight at once, spread over both nodes */
const WORKERS = 4;

interface Answer {
  at: number;
  node: number;
  status: number;
  job?: string;
  code?: string;
}

describe('HA database: the primary PostgreSQL killed under load', { skip }, () => {
  let lab: PatroniLab;
  let observer: DbHandle | undefined;
  const nodes: ServerProcess[] = [];
  let apis: Api[];
  let env: NetEnv;

  before(async () => {
    lab = await PatroniLab.start(2);
    const primary = await lab.waitReplicating();
    assert.ok(await lab.query(primary, 'create database nimbus'), `created the database${lab.tails()}`);
    const url = lab.url('nimbus');
    const dir = join(lab.dir, 'nodes');
    mkdirSync(dir);
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const p = new ServerProcess(
        [
          ...['--database-url', url, '--data-dir', join(dir, `ha-${i}`), '--host', '127.0.0.1'],
          ...['--port', String(port), '--node-name', `ha-${i}`, '--no-demo'],
          ...['--log-file', join(dir, `ha-${i}.log`), '--db-pool-size', '6'],
          ...['--heartbeat-ms', String(HEARTBEAT_MS), '--dead-after-ms', String(DEAD_AFTER_MS)],
        ],
        `http://127.0.0.1:${port}`,
      );
      nodes.push(p);
      await p.ready(120_000); // one after the other: the first migrates the database
    }
    // the test reads the database through the same multi-host URL (it follows the primary too)
    observer = openDb(url, { max: 3, applicationName: 'ha-test-observer' });
    apis = await Promise.all(nodes.map((n) => new Api(n.url).login('admin', CRASH_PASSWORD)));
    env = await buildNetEnv({ admin: apis[0] } as unknown as TestNode, {
      prefix: 'hadb',
      hosts: 8,
      hostCpu: 128,
      hostMemory: 512 * GiB,
      capacity: 4096 * GiB,
    });
    for (const api of apis) {
      const res = await api.post('/v1/simulator/faults', { point: 'command:vm.start', delayMs: 800 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });

  after(async () => {
    for (const n of nodes) await n.killHard().catch(() => {});
    await observer?.close().catch(() => {});
    await lab?.stop(); // etcd, Patroni, their PostgreSQL servers; removes the directory
  });

  test('the standby is promoted, the nodes serve again, no accepted job is lost, every job ends cleanly', async (t) => {
    const answers: Answer[] = [];
    let firing = true;
    let sent = 0;
    const fire = async (worker: number) => {
      while (firing && sent < MAX_CREATES) {
        const i = sent++;
        const node = (worker + i) % 2;
        const at = Date.now();
        const res = await apis[node]!.post('/v1/vms', {
          name: `hadb-${i}`,
          imageUuid: env.image,
          instanceOfferingUuid: env.small,
          l3NetworkUuids: [env.l3],
        }).catch((err: Error) => ({ status: 0, body: { error: { code: err.message } } }));
        answers.push({ at, node, status: res.status, job: res.body?.uuid, code: res.body?.error?.code });
        if (res.status !== 202) await sleep(200); // what a client does with a 503: try again shortly
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => fire(w));

    const accepted = () => answers.filter((a) => a.status === 202);
    const running = async () =>
      (await jobsOf(observer!)).filter((j) => j.kind === 'vm.create' && j.state === 'Running').length;
    await waitUntil(
      'creates accepted and some running',
      async () => accepted().length >= 30 && (await running()) >= 4,
      120_000,
    );
    const old = (await lab.primary())!;
    const standby = lab.members.find((m) => m !== old) as Member;
    const pid = lab.postmasterPid(old);
    assert.ok(pid, 'the primary’s postmaster runs');
    const before = accepted().map((a) => a.job!);
    const open = await running();
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    t.diagnostic(
      `SIGKILLed the primary's postmaster (${old.name}) with ${before.length} creates accepted, ${open} running`,
    );

    // Patroni promotes the synchronous standby
    const promoted = await lab.until('the standby promoted', 60_000, () => lab.primary(old));
    const promotedMs = Date.now() - killedAt;
    assert.equal(promoted, standby, 'the synchronous standby became the primary');
    // both nodes healthy again (their health probe reaches the new primary) and taking creates
    await waitUntil(
      'both nodes healthy again',
      async () => {
        for (const n of nodes) if (!n.running) assert.fail(`a node exited${n.tail()}`);
        const codes = await Promise.all(nodes.map((n) => fetch(`${n.url}/v1/health`).then((r) => r.status)));
        return codes.every((c) => c === 200);
      },
      60_000,
    );
    await waitUntil(
      'a create accepted by each node after the kill',
      async () =>
        [0, 1].every((n) => answers.some((a) => a.node === n && a.at > killedAt && a.status === 202)),
      60_000,
    );
    const servingMs = Date.now() - killedAt;
    t.diagnostic(
      `standby promoted ${promotedMs} ms after the kill; both nodes serving ${servingMs} ms after it`,
    );
    await sleep(2000); // some more creates on the new primary
    firing = false;
    await Promise.all(workers);

    let left: Record<string, unknown[]> = {};
    await waitUntil(
      'every job ended and no row transitional',
      async () => {
        left = await transitionalRows(observer!);
        return Object.keys(left).length === 0;
      },
      150_000,
      () => `\nleft: ${JSON.stringify(left).slice(0, 2000)}${nodes.map((n) => n.tail()).join('')}`,
    );

    // every answer a 202 or a retryable 503 (the database unreachable for a moment): nothing else
    const byStatus: Record<string, number> = {};
    for (const a of answers)
      byStatus[`${a.status} ${a.code ?? ''}`.trim()] =
        (byStatus[`${a.status} ${a.code ?? ''}`.trim()] ?? 0) + 1;
    t.diagnostic(`answers: ${JSON.stringify(byStatus)}`);
    for (const a of answers) assert.ok(a.status === 202 || a.status === 503, `answer ${JSON.stringify(a)}`);

    // no accepted job lost: each 202 (before the kill above all) has its job, and it ended cleanly
    const jobs = new Map((await jobsOf(observer!)).map((j) => [j.uuid, j]));
    const creates = [...jobs.values()].filter((j) => j.kind === 'vm.create');
    t.diagnostic(
      `${accepted().length} creates accepted (${before.length} before the kill), ${creates.length - accepted().length} more committed though their answer was lost; jobs: ${JSON.stringify(summary(creates))}`,
    );
    for (const uuid of before) assert.ok(jobs.has(uuid), `job ${uuid}, accepted before the kill, exists`);
    for (const a of accepted()) {
      const j = jobs.get(a.job!);
      assert.ok(j, `job ${a.job}, accepted at ${a.at - killedAt} ms from the kill, exists`);
    }
    for (const j of creates) {
      assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.uuid} ended ${j.state}`);
      if (j.state === 'Failed') {
        assert.equal(j.flow?.phase, 'rollback', `failed ${j.uuid} was rolled back`);
        assert.deepEqual(j.flow?.done, [], `failed ${j.uuid}: every done step undone`);
        assert.equal(j.error?.details?.rollbackFailures, undefined, `${j.uuid} rolled back cleanly`);
      }
    }
    assert.ok(
      creates.some((j) => j.state === 'Succeeded'),
      'creates succeeded',
    );
    await assertInvariants(observer!.db);

    // the nodes rode through: still running, neither fenced, both Running in management-nodes
    for (const n of nodes) assert.ok(n.running, `the node survived${n.tail()}`);
    const members = await observer!.db
      .selectFrom('managementNodes')
      .select(['name', 'stoppedAt', 'fencedBy'])
      .orderBy('name')
      .execute();
    assert.deepEqual(
      members.map((m) => ({ name: m.name, stopped: m.stoppedAt !== null, fencedBy: m.fencedBy })),
      [
        { name: 'ha-0', stopped: false, fencedBy: null },
        { name: 'ha-1', stopped: false, fencedBy: null },
      ],
      'one incarnation of each node, neither stopped nor fenced',
    );
    for (const api of apis) {
      const job = await api.job('POST', '/v1/vms', {
        name: `hadb-after-${api.url.slice(-5)}`,
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
        l3NetworkUuids: [env.l3],
      });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    }

    // the old primary comes back as a standby of the new one (pg_rewind), synchronous again
    const rejoined = await lab.until(
      'the old primary streaming as a synchronous standby',
      90_000,
      async () => {
        const rows = await lab.query<{ name: string }>(
          promoted,
          `select application_name as name from pg_stat_replication where state = 'streaming' and sync_state = 'sync'`,
        );
        return rows?.some((r) => r.name === old.name) ? Date.now() - killedAt : undefined;
      },
    );
    t.diagnostic(`${old.name} streaming again as the synchronous standby ${rejoined} ms after the kill`);
  });
});
