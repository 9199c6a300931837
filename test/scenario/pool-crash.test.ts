/**
 * Pools and leases survive the death of their management node (issue 11, "what must be shown"):
 * a node killed with SIGKILL (1) while 40 users allocate at once from a warm pool whose stock runs
 * short (some served at once, some waiting for the refill, some requests cut in flight), and
 * (2) while 60 expired leases are being reclaimed (ordinary VMs destroyed, important ones
 * stopped), (3) while the health scanner restarts a crashed leased VM; then restarted with the
 * same name. The diagnostics say where each kill landed. Afterwards no VM is held by two leases, every handed-out VM has its lease and every live
 * lease its VM (moved to its holder's account), every answer the callers got still holds, no
 * Pending lease or unfinished job is left, the holder's quota is exactly its VMs, host capacity
 * is exact, and the pool is back at its warm stock within its cap.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { DbHandle } from '../../src/db/pool.js';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import {
  CRASH_PASSWORD,
  crashHarness,
  jobsOf,
  noBackendsOf,
  summary,
  unfinished,
  waitUntil,
} from './crash-fixtures.js';
import { buildNetEnv, type NetEnv } from './network-fixtures.js';
import { GiB } from './vm-env.js';

// the child nodes' periodic passes, fast enough for a test (they read NIMBUS_SETTINGS at start)
process.env.NIMBUS_SETTINGS = JSON.stringify({ poolStockIntervalSeconds: 1, leaseScanIntervalSeconds: 1 });

const RECOVERY_MS = 180_000;
const harness = crashHarness();
after(() => harness.cleanup());

interface World {
  api: Api;
  env: NetEnv;
  tenant: string;
  users: Api[];
}

async function succeed(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

/** 4 hosts, a flat L3, a tenant with `n` users and room for every VM. */
async function buildWorld(url: string, n: number): Promise<World> {
  const anon = new Api(url);
  const api = await anon.login('admin', CRASH_PASSWORD);
  const env = await buildNetEnv({ admin: api, anon } as unknown as TestNode, {
    hosts: 4,
    hostCpu: 64,
    hostMemory: 256 * GiB,
    prefix: 'poolcrash',
  });
  const tenant = (await succeed(api, 'POST', '/v1/accounts', { name: 'crash', password: 'crash-password' }))
    .resourceUuid as string;
  const quota = await api.patch(`/v1/quotas/${tenant}`, {
    'vm.num': 500,
    'vm.cpu': 1000,
    'vm.memory': 2000 * GiB,
    'volume.capacity': 100_000 * GiB,
  });
  assert.ok([200, 202].includes(quota.status), JSON.stringify(quota.body));
  const users: Api[] = [];
  for (let i = 0; i < n; i += 10) {
    const names = Array.from({ length: Math.min(10, n - i) }, (_, k) => `crash-user-${i + k}`);
    await Promise.all(
      names.map((name) =>
        succeed(api, 'POST', '/v1/users', { name, password: `${name}-pw`, accountUuid: tenant }),
      ),
    );
    users.push(...(await Promise.all(names.map((name) => anon.login('crash', `${name}-pw`, name)))));
  }
  return { api, env, tenant, users };
}

async function makePool(w: World, body: Record<string, unknown>): Promise<string> {
  const job = await succeed(w.api, 'POST', '/v1/pools', {
    imageUuid: w.env.image,
    instanceOfferingUuid: w.env.small,
    l3NetworkUuids: [w.env.l3],
    shared: true,
    perUserLimit: 1,
    burstThreshold: 1000,
    ...body,
  });
  return job.resourceUuid;
}

async function poolRows(observer: DbHandle, pool: string) {
  return observer.db.selectFrom('poolVms').select(['vmUuid', 'state']).where('poolUuid', '=', pool).execute();
}

/** Where a pool stands, for failure messages. */
async function where(observer: DbHandle, pool: string): Promise<string> {
  const leases = await observer.db
    .selectFrom('leases')
    .select('state')
    .where('poolUuid', '=', pool)
    .execute();
  const stock = await poolRows(observer, pool);
  const tally = (xs: Array<{ state: string }>) => {
    const counts: Record<string, number> = {};
    for (const x of xs) counts[x.state] = (counts[x.state] ?? 0) + 1;
    return counts;
  };
  return JSON.stringify({
    leases: tally(leases),
    stock: tally(stock),
    open: summary(await unfinished(observer)),
  });
}

async function slow(api: Api, points: Array<{ point: string; delayMs: number }>): Promise<void> {
  for (const f of points) {
    const res = await api.post('/v1/simulator/faults', f);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
}

/**
 * The promise, whatever the kill interrupted: one live lease per handed-out VM and one VM per live
 * lease, in its holder's account; no Pending lease; every job finished; the holder's quota is its
 * VMs; no VM of the pool lost (every VM is a pool row's); host capacity exact.
 */
async function assertPoolConsistent(observer: DbHandle, w: World, pool: string, cap: number): Promise<void> {
  const jobs = await jobsOf(observer);
  const open = jobs.filter((j) => j.state === 'Pending' || j.state === 'Running');
  assert.deepEqual(summary(open), {}, 'no job left unfinished');
  const leases = await observer.db.selectFrom('leases').selectAll().where('poolUuid', '=', pool).execute();
  assert.deepEqual(
    leases.filter((l) => l.state === 'Pending').map((l) => l.uuid),
    [],
    'no lease left waiting',
  );
  const live = leases.filter((l) => l.state === 'Active' || l.state === 'Stopped');
  const liveVms = live.map((l) => l.vmUuid);
  assert.ok(
    liveVms.every((v) => v !== null),
    'every live lease has its VM',
  );
  assert.equal(new Set(liveVms).size, liveVms.length, 'no VM held by two leases');
  const rows = await poolRows(observer, pool);
  const byVm = new Map(rows.map((r) => [r.vmUuid, r.state]));
  for (const l of live)
    assert.equal(byVm.get(l.vmUuid!), 'Allocated', `lease ${l.uuid}: its VM is handed out`);
  const allocated = rows.filter((r) => r.state === 'Allocated').map((r) => r.vmUuid);
  const held = new Set(liveVms);
  assert.deepEqual(
    allocated.filter((v) => !held.has(v)),
    [],
    'no handed-out VM without its lease',
  );
  const vms = await observer.db.selectFrom('vms').select(['uuid', 'accountUuid', 'state']).execute();
  const vmByUuid = new Map(vms.map((v) => [v.uuid, v]));
  for (const l of live)
    assert.equal(
      vmByUuid.get(l.vmUuid!)?.accountUuid,
      l.accountUuid,
      `lease ${l.uuid}: the VM is its holder's`,
    );
  assert.deepEqual(
    vms.filter((v) => !byVm.has(v.uuid)).map((v) => v.uuid),
    [],
    'every VM is one of the pool’s (none lost)',
  );
  assert.ok(rows.length <= cap, `the pool holds ${rows.length} VMs, its cap is ${cap}`);
  const used = await observer.db
    .selectFrom('quotas')
    .select('used')
    .where('accountUuid', '=', w.tenant)
    .where('name', '=', 'vm.num')
    .executeTakeFirst();
  assert.equal(
    Number(used?.used ?? 0),
    vms.filter((v) => v.accountUuid === w.tenant).length,
    'the holder’s vm.num quota is exactly its VMs',
  );
  await assertInvariants(observer.db);
}

test('a node killed while 40 users allocate from a pool running short: nothing handed out twice, lost, or without its lease', async (t) => {
  const { db, observer, url, start } = await harness.setup('pool-crash-allocate');
  const first = start();
  await first.ready();
  const w = await buildWorld(url, 40);
  const pool = await makePool(w, {
    name: 'crash-alloc',
    warmTarget: 20,
    cap: 45,
    emptyPolicy: 'wait',
    waitSeconds: 120,
  });
  await waitUntil(
    '20 ready VMs',
    async () => (await poolRows(observer, pool)).filter((r) => r.state === 'Ready').length === 20,
    RECOVERY_MS,
  );
  // refills slow, so the requests beyond the stock wait (Pending leases) across the kill
  await slow(w.api, [{ point: 'command:vm.start', delayMs: 2000 }]);

  // wave 1: 25 requests, 20 served from the stock and 5 left waiting for the refill
  const answers: Array<{ status: number; body: any } | undefined> = Array.from(
    { length: 40 },
    () => undefined,
  );
  const ask = (i: number) =>
    w.users[i]!.post(`/v1/pools/${pool}/actions/allocate`, {}).then(
      (r) => {
        answers[i] = r;
      },
      () => {}, // cut by the kill
    );
  const requests = Array.from({ length: 25 }, (_, i) => ask(i));
  await waitUntil(
    'served and waiting allocations',
    async () => {
      const leases = await observer.db
        .selectFrom('leases')
        .select('state')
        .where('poolUuid', '=', pool)
        .execute();
      return leases.filter((l) => l.state === 'Pending').length >= 5 && leases.length >= 25;
    },
    60_000,
    () => first.tail(),
  );
  // wave 2: 15 more, and the kill as soon as the first of them is answered (the others in flight)
  const wave2 = Array.from({ length: 15 }, (_, k) => ask(25 + k));
  requests.push(...wave2);
  await waitUntil(
    'a first answer to wave 2',
    async () => answers.slice(25).some((a) => a !== undefined),
    30_000,
  );
  await first.killHard();
  await Promise.all(requests);
  await noBackendsOf(observer, db.name);
  const atKill = await observer.db
    .selectFrom('leases')
    .select('state')
    .where('poolUuid', '=', pool)
    .execute();
  const pendingAtKill = atKill.filter((l) => l.state === 'Pending').length;
  assert.ok(pendingAtKill > 0, 'the kill found allocations waiting for a VM');
  const statuses = answers.map((a) => a?.status ?? 'cut');
  t.diagnostic(
    `at the kill: ${atKill.length} leases (${pendingAtKill} Pending); answers ${JSON.stringify(
      Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length])),
    )}`,
  );

  const second = start();
  await second.ready();
  await waitUntil(
    'every allocation to end and the pool to refill',
    async () => {
      if ((await unfinished(observer)).length > 0) return false;
      const leases = await observer.db
        .selectFrom('leases')
        .select('state')
        .where('poolUuid', '=', pool)
        .execute();
      if (leases.some((l) => l.state === 'Pending')) return false;
      const rows = await poolRows(observer, pool);
      const ready = rows.filter((r) => r.state === 'Ready').length;
      const busy = rows.filter((r) => r.state === 'Provisioning' || r.state === 'Discarding').length;
      return busy === 0 && ready === Math.min(20, 45 - rows.length + ready);
    },
    RECOVERY_MS,
    () => second.tail(),
  );
  await assertPoolConsistent(observer, w, pool, 45);

  // every answer a caller got still holds
  for (const [i, a] of answers.entries()) {
    if (!a) continue;
    if (a.status === 200) {
      const lease = await observer.db
        .selectFrom('leases')
        .selectAll()
        .where('uuid', '=', a.body.resourceUuid)
        .executeTakeFirst();
      assert.equal(lease?.state, 'Active', `caller ${i} was served: its lease lives`);
      assert.equal(lease?.vmUuid, a.body.result.vm.uuid, `caller ${i} keeps the VM it was given`);
    } else if (a.status === 202) {
      const job = await observer.db
        .selectFrom('jobs')
        .select(['state', 'resourceUuid'])
        .where('uuid', '=', a.body.uuid)
        .executeTakeFirstOrThrow();
      const lease = await observer.db
        .selectFrom('leases')
        .selectAll()
        .where('uuid', '=', job.resourceUuid!)
        .executeTakeFirstOrThrow();
      if (job.state === 'Succeeded')
        assert.equal(lease.state, 'Active', `caller ${i}: served after the restart`);
      else assert.equal(lease.state, 'Ended', `caller ${i}: its waiting lease ended with its job`);
    } else assert.fail(`caller ${i} got ${a.status}: ${JSON.stringify(a.body)}`);
  }
  // the callers whose requests the kill cut may ask again; the pool still serves
  const again = await w.users[0]!.get('/v1/leases');
  assert.equal(again.status, 200);
  await second.killHard();
});

test('a node killed while expired leases are reclaimed: every lease ends as its policy says, no VM lost or left without a lease', async (t) => {
  const { db, observer, url, start } = await harness.setup('pool-crash-reclaim');
  const first = start();
  await first.ready();
  const w = await buildWorld(url, 20);
  // 60 leases (3 per user), so that a scan takes long enough for the kill to land inside it
  const pool = await makePool(w, { name: 'crash-reclaim', warmTarget: 60, cap: 130, perUserLimit: 3 });
  const stocked = () =>
    waitUntil(
      '60 ready VMs',
      async () => (await poolRows(observer, pool)).filter((r) => r.state === 'Ready').length === 60,
      RECOVERY_MS,
    );
  await stocked();
  const leases: Array<{ uuid: string; importance: string }> = [];
  for (let round = 0; round < 3; round++)
    for (const [i, u] of w.users.entries()) {
      const importance = (i + round) % 2 === 0 ? 'normal' : 'high';
      const job = await succeed(u, 'POST', `/v1/pools/${pool}/actions/allocate`, { importance });
      leases.push({ uuid: job.resourceUuid, importance });
    }
  await stocked();
  // the reclamation's host commands slow, so the kill finds it in flight
  await slow(w.api, [
    { point: 'command:vm.destroy', delayMs: 2000 },
    { point: 'command:vm.stop', delayMs: 2000 },
  ]);
  // their time is up (the clock moved for them): the node's next lease scan reclaims them
  await observer.db
    .updateTable('leases')
    .set({ expiresAt: new Date(Date.now() - 60_000) })
    .where('poolUuid', '=', pool)
    .execute();
  let seen = '';
  await waitUntil(
    'the reclamation in flight',
    async () => {
      const rows = await observer.db
        .selectFrom('leases')
        .select('state')
        .where('poolUuid', '=', pool)
        .execute();
      const open = (await unfinished(observer)).filter(
        (j) => j.kind === 'vm.destroy' || j.kind === 'vm.stop',
      );
      const count = (state: string) => rows.filter((r) => r.state === state).length;
      seen = JSON.stringify({
        Active: count('Active'),
        Ended: count('Ended'),
        Stopped: count('Stopped'),
        openStopsAndDestroys: open.length,
      });
      // inside the scan (some leases reclaimed, some not yet) or, if the scan was quicker than
      // this poll, while its VMs are being stopped and destroyed
      return rows.some((r) => r.state !== 'Active') && (count('Active') > 0 || open.length >= 5);
    },
    60_000,
    () => `\nlast seen ${seen}${first.tail()}`,
  );
  await first.killHard();
  await noBackendsOf(observer, db.name);
  t.diagnostic(`at the kill: ${seen}`);

  const second = start();
  await second.ready();
  const high = new Set(leases.filter((l) => l.importance === 'high').map((l) => l.uuid));
  await waitUntil(
    'every expired lease reclaimed as its policy says and the pool refilled',
    async () => {
      seen = await where(observer, pool);
      if ((await unfinished(observer)).length > 0) return false;
      const rows = await observer.db
        .selectFrom('leases')
        .select(['uuid', 'state', 'vmUuid'])
        .where('poolUuid', '=', pool)
        .execute();
      for (const r of rows) if (r.state !== (high.has(r.uuid) ? 'Stopped' : 'Ended')) return false;
      const stock = await poolRows(observer, pool);
      return (
        stock.every((s) => s.state === 'Ready' || s.state === 'Allocated') &&
        stock.filter((s) => s.state === 'Ready').length === 60
      );
    },
    RECOVERY_MS,
    () => `\nlast seen ${seen}${second.tail()}`,
  );
  await assertPoolConsistent(observer, w, pool, 130);
  // the important VMs are stopped and kept for their grace period; the ordinary ones are gone
  const rows = await observer.db.selectFrom('leases').selectAll().where('poolUuid', '=', pool).execute();
  for (const r of rows) {
    const vm = r.vmUuid
      ? await observer.db
          .selectFrom('vms')
          .select(['state', 'task'])
          .where('uuid', '=', r.vmUuid)
          .executeTakeFirst()
      : undefined;
    if (high.has(r.uuid)) {
      assert.deepEqual(
        [vm?.state, vm?.task],
        ['Stopped', null],
        `important lease ${r.uuid}: its VM is stopped`,
      );
      assert.ok(r.deleteAfter, 'and deleted only after its grace period');
    } else {
      assert.equal(r.endReason, 'expired');
      assert.equal(vm, undefined, `ordinary lease ${r.uuid}: its VM is gone`);
    }
  }
  await second.killHard();
});

test('a node killed while it heals a leased VM: after the restart the step it cut is tried again, nothing submitted twice', async (t) => {
  // this node's passes: the reconciler finds the crashed VM, the health scanner heals it
  process.env.NIMBUS_SETTINGS = JSON.stringify({
    poolStockIntervalSeconds: 1,
    leaseScanIntervalSeconds: 1,
    reconcileIntervalSeconds: 1,
    healthScanIntervalSeconds: 1,
  });
  const { db, observer, url, start } = await harness.setup('pool-crash-heal');
  const first = start();
  await first.ready();
  const w = await buildWorld(url, 1);
  const pool = await makePool(w, { name: 'crash-heal', warmTarget: 2, cap: 6, perUserLimit: 2 });
  await waitUntil(
    '2 ready VMs',
    async () => (await poolRows(observer, pool)).filter((r) => r.state === 'Ready').length === 2,
    RECOVERY_MS,
  );
  const job = await succeed(w.users[0]!, 'POST', `/v1/pools/${pool}/actions/allocate`, {});
  const lease = job.resourceUuid as string;
  const vm = job.result.vm.uuid as string;
  await waitUntil(
    'the pool refilled and quiet',
    async () => {
      const rows = await poolRows(observer, pool);
      return (
        rows.filter((r) => r.state === 'Ready').length === 2 && rows.every((r) => r.state !== 'Provisioning')
      );
    },
    RECOVERY_MS,
  );
  // its restart will hang on the host long enough for the kill to find it in flight
  await slow(w.api, [{ point: 'command:vm.start', delayMs: 5000 }]);
  const crashed = await w.api.post(`/v1/simulator/vms/${vm}/state`, { state: 'Stopped' });
  assert.equal(crashed.status, 200, JSON.stringify(crashed.body));
  const healJobs = () =>
    observer.db
      .selectFrom('jobs')
      .select(['uuid', 'kind', 'state', 'requestId'])
      .where('resourceUuid', '=', vm)
      .where('requestId', 'like', 'heal:%')
      .orderBy('createdAt')
      .execute();
  await waitUntil(
    'the restart in flight',
    async () => (await healJobs()).some((j) => j.kind === 'vm.start' && j.state === 'Running'),
    60_000,
    () => first.tail(),
  );
  await first.killHard();
  await noBackendsOf(observer, db.name);

  const second = start();
  await second.ready();
  await waitUntil(
    'the VM healed',
    async () => {
      const l = await observer.db
        .selectFrom('leases')
        .select('health')
        .where('uuid', '=', lease)
        .executeTakeFirstOrThrow();
      const v = await observer.db
        .selectFrom('vms')
        .select(['state', 'task'])
        .where('uuid', '=', vm)
        .executeTakeFirstOrThrow();
      return (
        l.health === 'Healthy' &&
        v.state === 'Running' &&
        v.task === null &&
        (await unfinished(observer)).length === 0
      );
    },
    RECOVERY_MS,
    () => second.tail(),
  );
  const jobs = await healJobs();
  const perStep = new Map<string, number>();
  for (const j of jobs) perStep.set(j.requestId!, (perStep.get(j.requestId!) ?? 0) + 1);
  assert.deepEqual(
    [...perStep].filter(([, n]) => n > 1),
    [],
    'no step of the healing submitted twice',
  );
  const events = await observer.db
    .selectFrom('events')
    .select(['type', 'data'])
    .where('resourceUuid', '=', lease)
    .where('type', 'like', 'lease.%heal%')
    .orderBy('id')
    .execute();
  const story = events.map((e) => {
    const d = e.data as { stage?: string; by?: string; operation?: string };
    return [e.type, d.stage ?? d.by, d.operation].filter(Boolean).join(' ');
  });
  t.diagnostic(
    `jobs ${JSON.stringify(jobs.map((j) => `${j.kind} ${j.state}`))}; events ${JSON.stringify(story)}`,
  );
  assert.equal(story.filter((s) => s === 'lease.heal.started').length, 1, 'one healing');
  // the restart the kill cut is tried again (a dead node says nothing about the VM): no rebuild
  assert.deepEqual(story, [
    'lease.heal.started',
    'lease.heal.attempt restart start',
    'lease.heal.attempt restart start',
    'lease.healed restart',
  ]);
  assert.deepEqual(
    jobs.map((j) => [j.kind, j.state]),
    [
      ['vm.start', 'Failed'],
      ['vm.start', 'Succeeded'],
    ],
  );
  await assertPoolConsistent(observer, w, pool, 6);
  await second.killHard();
});
