/**
 * Fencing (issue 10, docs/cluster.md): node A is SIGSTOPped in the middle of its VM creates
 * (each one paused in a slow simulated start), and stays stopped until node B declares it dead,
 * fences it and finishes or rolls back its jobs. Then A is SIGCONTed: its paused steps wake up
 * and try to go on, its heartbeat fires — and nothing it does reaches the database: every row
 * (VMs, volumes, NICs, addresses, jobs, hosts' counters, events) is exactly what it was before
 * A resumed, A has no session left, and it exits with code 3 (fenced).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import { type Cluster, DEAD_AFTER_MS, startCluster, transitionalRows } from './cluster-fixtures.js';
import { CRASH_PASSWORD, jobsOf, sleep, summary, waitUntil } from './crash-fixtures.js';
import { buildVmEnv, type VmEnv } from './vm-env.js';

let cluster: Cluster;
let apis: Api[];
let env: VmEnv;

before(async () => {
  // B's reconciler stays out of the way: what changes after A resumes could only be A's doing
  cluster = await startCluster('clfence', 2, { reconcileIntervalSeconds: 3600 });
  apis = await Promise.all(cluster.nodes.map((n) => new Api(n.url).login('admin', CRASH_PASSWORD)));
  env = await buildVmEnv({ admin: apis[1] } as unknown as TestNode, { prefix: 'clfence', hosts: 4 });
});
after(() => cluster?.cleanup());

/** A digest of every row a VM create touches (host counters without their ping times). */
async function snapshot(): Promise<Record<string, string>> {
  const digest = async (query: string) =>
    (
      await sql<{
        d: string;
      }>`${sql.raw(`select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as d from (${query}) t`)}`.execute(
        cluster.observer.db,
      )
    ).rows[0]!.d;
  return {
    vms: await digest('select * from vms'),
    volumes: await digest('select * from volumes'),
    vmNics: await digest('select * from vm_nics'),
    ipAddresses: await digest('select * from ip_addresses'),
    jobs: await digest('select * from jobs'),
    imageCache: await digest('select * from image_cache'),
    hosts: await digest('select uuid, status, cpu_used, memory_used, vm_count from hosts'),
    simulatorVms: await digest('select * from simulator_vms'),
    events: await digest('select id, uuid, type, resource_uuid from events'),
  };
}

test('a SIGSTOPped node declared dead and fenced writes nothing after SIGCONT, and exits', async (t) => {
  const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  const [aUuid, bUuid] = [await a.uuid(), await b.uuid()];
  // A's starts are slow: its chains are paused inside them when it is stopped
  const slow = await apis[0]!.post('/v1/simulator/faults', { point: 'command:vm.start', delayMs: 4000 });
  assert.equal(slow.status, 201, JSON.stringify(slow.body));
  const accepted = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      apis[0]!.post('/v1/vms', {
        name: `clfence-${i}`,
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
      }),
    ),
  );
  for (const r of accepted) assert.equal(r.status, 202, JSON.stringify(r.body));
  await waitUntil('A’s creates inside their starts', async () => {
    const jobs = (await jobsOf(cluster.observer)).filter(
      (j) => j.kind === 'vm.create' && j.state === 'Running',
    );
    return jobs.length >= 5 && jobs.every((j) => j.ownerNode === aUuid);
  });
  process.kill(a.process.pid, 'SIGSTOP');
  const stoppedAt = Date.now();

  // B declares A dead, fences it, and ends its jobs
  await waitUntil(
    'B fenced A',
    async () => {
      const row = await cluster.observer.db
        .selectFrom('managementNodes')
        .select(['stoppedAt', 'fencedBy'])
        .where('uuid', '=', aUuid)
        .executeTakeFirstOrThrow();
      return row.stoppedAt !== null && row.fencedBy === bUuid;
    },
    DEAD_AFTER_MS * 4,
  );
  t.diagnostic(`A fenced ${Date.now() - stoppedAt} ms after SIGSTOP`);
  const sessions = async () =>
    Number(
      (
        await sql<{
          n: number;
        }>`select count(*)::int as n from pg_stat_activity where application_name = ${`nimbus node ${aUuid}`}`.execute(
          cluster.observer.db,
        )
      ).rows[0]!.n,
    );
  // the fence's UPDATE commits first, then its pg_terminate_backend ends A's sessions
  await waitUntil('A’s sessions ended', async () => (await sessions()) === 0, 10_000);
  let left: Record<string, unknown[]> = {};
  await waitUntil(
    'B ended A’s jobs',
    async () => {
      left = await transitionalRows(cluster.observer);
      return Object.keys(left).length === 0;
    },
    60_000,
    () => `\nleft: ${JSON.stringify(left).slice(0, 2000)}`,
  );
  const jobs = (await jobsOf(cluster.observer)).filter((j) => accepted.some((r) => r.body.uuid === j.uuid));
  t.diagnostic(`A's creates, ended by B: ${JSON.stringify(summary(jobs))}`);
  for (const j of jobs) assert.equal(j.ownerNode, bUuid, `job ${j.uuid} was taken over by B`);
  await assertInvariants(cluster.observer.db);
  const before = await snapshot();

  // A wakes up: its paused starts return, its steps and heartbeat try the database
  process.kill(a.process.pid, 'SIGCONT');
  const exit = await Promise.race([a.process.exited, sleep(30_000).then(() => undefined)]);
  assert.deepEqual(exit, { code: 3, signal: null }, `A exits fenced${a.process.tail()}`);
  await sleep(1000);
  assert.deepEqual(await snapshot(), before, 'nothing changed after A resumed');
  assert.equal(await sessions(), 0);
  assert.match(a.process.tail(), /fenced/);
  await assertInvariants(cluster.observer.db);

  // A restarted is a new node that takes work again
  const again = await cluster.restart(0);
  assert.notEqual(await again.uuid(), aUuid);
  const api = await new Api(again.url).login('admin', CRASH_PASSWORD);
  const vm = await api.job('POST', '/v1/vms', {
    name: 'clfence-after',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(vm.state, 'Succeeded', JSON.stringify(vm));
});
