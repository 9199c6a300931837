/**
 * Self-service pools on simulated hosts, through the API: warm stock kept at its target and under
 * its cap, 100 users taking VMs at once (none handed out twice), per-user limits, leases that
 * expire (ordinary and important) on a clock the test moves, renewals and their limit, release,
 * the empty-pool policies, and bad input refused with nothing changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LeaseService } from '../../src/resources/self-service/lease/service.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildNetEnv, type NetEnv } from './network-fixtures.js';
import { until } from './pool-fixtures.js';
import { GiB, ok } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let tenant: string;

const DAY = 24 * 3600;

const counts = async (pool: string) => {
  const rows = await t.db.db
    .selectFrom('poolVms')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .where('poolUuid', '=', pool)
    .groupBy('state')
    .execute();
  const c = { Provisioning: 0, Ready: 0, Allocated: 0, Discarding: 0 };
  for (const r of rows) c[r.state] = Number(r.n);
  return { ...c, total: c.Provisioning + c.Ready + c.Allocated + c.Discarding };
};

const leases = () => t.node.kindServices.find((s) => s.contract.kind === 'leases') as unknown as LeaseService;

async function makePool(body: Record<string, unknown>): Promise<string> {
  const job = await ok(t, 'POST', '/v1/pools', {
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: [env.l3],
    shared: true,
    ...body,
  });
  return job.resourceUuid;
}

async function users(n: number, prefix: string): Promise<Api[]> {
  const apis: Api[] = [];
  for (let i = 0; i < n; i += 20) {
    const batch = Array.from({ length: Math.min(20, n - i) }, (_, k) => `${prefix}-${i + k}`);
    await Promise.all(
      batch.map((name) =>
        ok(t, 'POST', '/v1/users', { name, password: `${name}-password`, accountUuid: tenant }),
      ),
    );
    apis.push(...(await Promise.all(batch.map((name) => t.anon.login('dev', `${name}-password`, name)))));
  }
  return apis;
}

before(async () => {
  t = await startTestNode({ settings: { poolStockIntervalSeconds: 1 } });
  env = await buildNetEnv(t, { hosts: 4, hostCpu: 64, hostMemory: 512 * GiB, prefix: 'pool' });
  tenant = (await ok(t, 'POST', '/v1/accounts', { name: 'dev', password: 'dev-password' })).resourceUuid;
  const quota = await t.admin.patch(`/v1/quotas/${tenant}`, {
    'vm.num': 500,
    'vm.cpu': 1000,
    'vm.memory': 2000 * GiB,
    'volume.capacity': 100_000 * GiB,
  });
  assert.ok([200, 202].includes(quota.status), JSON.stringify(quota.body));
});

after(async () => {
  await t?.stop();
});

describe('warm stock and instant allocation', () => {
  test('100 users take VMs at once: 100 distinct VMs, each moved to its holder; the pool refills to its cap, never past it', async () => {
    const pool = await makePool({ name: 'web-dev', warmTarget: 100, cap: 150, perUserLimit: 1 });
    await until(
      '100 ready VMs',
      () => counts(pool),
      (c) => c.Ready === 100,
      240_000,
    );
    const people = await users(100, 'dev');

    const jobs = await Promise.all(
      people.map((api) => api.job('POST', `/v1/pools/${pool}/actions/allocate`, { leaseSeconds: DAY })),
    );
    for (const j of jobs) assert.equal(j.state, 'Succeeded', JSON.stringify(j));
    const vms = jobs.map((j) => j.result.vm.uuid as string);
    assert.equal(new Set(vms).size, 100, 'no VM handed out twice');
    for (const j of jobs) {
      assert.equal(j.result.state, 'Active');
      assert.equal(j.result.vm.state, 'Running');
      assert.equal(j.result.vm.ips.length, 1, 'the VM comes with its address');
      assert.deepEqual(j.result.ips, j.result.vm.ips, 'and the lease shows it');
    }
    const owners = await t.db.db.selectFrom('vms').select('accountUuid').where('uuid', 'in', vms).execute();
    assert.ok(
      owners.every((o) => o.accountUuid === tenant),
      'every VM is its holder’s account’s',
    );
    const used = await t.db.db
      .selectFrom('quotas')
      .select('used')
      .where('accountUuid', '=', tenant)
      .where('name', '=', 'vm.num')
      .executeTakeFirstOrThrow();
    assert.equal(Number(used.used), 100, 'the holder’s quota is charged');

    // refilling: warm target 100 but the cap of 150 leaves room for 50; never more rows than the cap
    const seen = await until(
      'the pool to refill to its cap',
      async () => {
        const c = await counts(pool);
        assert.ok(c.total <= 150, `the pool holds ${c.total} VMs, more than its cap`);
        return c;
      },
      (c) => c.Ready === 50,
      240_000,
    );
    assert.equal(seen.Allocated, 100);

    // the per-user limit: each holds one already
    const refused = await people[0]!.post(`/v1/pools/${pool}/actions/allocate`, {});
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'POOL_USER_LIMIT');

    // a tenant sees the shared pool and its own leases, not the others' and not the pool's settings to change
    const mine = await people[1]!.get('/v1/leases');
    assert.equal(mine.body.items.filter((l: any) => l.userUuid !== undefined).length, 100);
    const change = await people[1]!.patch(`/v1/pools/${pool}`, { warmTarget: 1 });
    assert.equal(change.status, 403);

    // drain the pool for the next tests: release every lease, warm target 0
    await ok(t, 'PATCH', `/v1/pools/${pool}`, { warmTarget: 0 });
    const released = await Promise.all(
      jobs.map((j, i) => people[i]!.job('POST', `/v1/leases/${j.resourceUuid}/actions/release`, {})),
    );
    for (const r of released) assert.equal(r.state, 'Succeeded', JSON.stringify(r));
    await until(
      'the pool to empty',
      () => counts(pool),
      (c) => c.total === 0,
      240_000,
    );
    const after = await t.db.db
      .selectFrom('quotas')
      .select('used')
      .where('accountUuid', '=', tenant)
      .where('name', '=', 'vm.num')
      .executeTakeFirstOrThrow();
    assert.equal(Number(after.used), 0, 'released VMs give the quota back once expunged');
    await ok(t, 'DELETE', `/v1/pools/${pool}`);
  });
});

describe('leases on a clock the test moves', () => {
  let pool: string;
  let holder: Api | undefined;
  before(async () => {
    pool = await makePool({
      name: 'redis-test',
      warmTarget: 3,
      cap: 6,
      perUserLimit: 5,
      defaultLeaseSeconds: DAY,
      maxLeaseSeconds: 7 * DAY,
      maxRenewals: 1,
    });
    [holder] = await users(1, 'clock');
    await until(
      '3 ready VMs',
      () => counts(pool),
      (c) => c.Ready === 3,
    );
  });

  test('an ordinary lease ends at expiry: its VM goes back to the pool (destroyed and expunged), the pool makes a fresh one', async () => {
    const job = await holder!.job('POST', `/v1/pools/${pool}/actions/allocate`, {});
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const lease = job.resourceUuid as string;
    const vm = job.result.vm.uuid as string;

    const early = await leases().scan(new Date(Date.now() + DAY * 1000 - 3600_000), true);
    assert.equal(early.noticed, 1, 'the holder is told before the end');
    assert.equal(early.ended, 0);
    const notice = await t.db.db
      .selectFrom('events')
      .select('type')
      .where('resourceUuid', '=', lease)
      .where('type', '=', 'lease.expiring')
      .execute();
    assert.equal(notice.length, 1);

    const late = await leases().scan(new Date(Date.now() + DAY * 1000 + 1000), true);
    assert.equal(late.ended, 1);
    const row = await t.db.db
      .selectFrom('leases')
      .selectAll()
      .where('uuid', '=', lease)
      .executeTakeFirstOrThrow();
    assert.equal(row.state, 'Ended');
    assert.equal(row.endReason, 'expired');
    await until(
      'the expired VM to be expunged',
      () => t.db.db.selectFrom('vms').select('uuid').where('uuid', '=', vm).executeTakeFirst(),
      (v) => v === undefined,
    );
    await until(
      'the pool to be back at 3 ready',
      () => counts(pool),
      (c) => c.Ready === 3 && c.total === 3,
    );
  });

  test('an important lease: at expiry the VM is stopped, a renewal starts it again; after the grace period it is deleted', async () => {
    const job = await holder!.job('POST', `/v1/pools/${pool}/actions/allocate`, { importance: 'high' });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const lease = job.resourceUuid as string;
    const vm = job.result.vm.uuid as string;
    const vmState = async () =>
      (await t.db.db.selectFrom('vms').select(['state', 'task']).where('uuid', '=', vm).executeTakeFirst()) ??
      null;

    const expiry = Date.now() + DAY * 1000 + 1000;
    const r1 = await leases().scan(new Date(expiry), true);
    assert.equal(r1.stopped, 1);
    assert.equal(r1.ended, 0);
    await until('the VM to stop', vmState, (v) => v?.state === 'Stopped' && v.task === null);
    const stopped = await t.db.db
      .selectFrom('leases')
      .selectAll()
      .where('uuid', '=', lease)
      .executeTakeFirstOrThrow();
    assert.equal(stopped.state, 'Stopped');
    assert.equal(
      new Date(stopped.deleteAfter!).getTime(),
      expiry + 3 * DAY * 1000,
      'grace: 3 days by default',
    );

    // one renewal allowed: the VM starts again
    const renewed = await holder!.job('POST', `/v1/leases/${lease}/actions/renew`, { leaseSeconds: 2 * DAY });
    assert.equal(renewed.state, 'Succeeded', JSON.stringify(renewed));
    assert.equal(renewed.result.state, 'Active');
    assert.equal(renewed.result.renewals, 1);
    assert.equal((await vmState())?.state, 'Running');
    // the second is past the pool's limit: refused, nothing changes
    const again = await holder!.post(`/v1/leases/${lease}/actions/renew`, {});
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'LEASE_RENEWAL_LIMIT');

    const newExpiry = Date.now() + 2 * DAY * 1000 + 5000;
    assert.equal((await leases().scan(new Date(newExpiry), true)).stopped, 1);
    // within the grace period nothing more happens
    assert.equal((await leases().scan(new Date(newExpiry + DAY * 1000), true)).ended, 0);
    const r3 = await leases().scan(new Date(newExpiry + 3 * DAY * 1000 + 1000), true);
    assert.equal(r3.ended, 1);
    await until('the VM to be expunged', vmState, (v) => v === null);
    const ended = await t.db.db
      .selectFrom('leases')
      .selectAll()
      .where('uuid', '=', lease)
      .executeTakeFirstOrThrow();
    assert.equal(ended.state, 'Ended');
  });

  test('bad input is refused with a clear error and changes nothing', async () => {
    const before = await counts(pool);
    const unknown = await holder!.post('/v1/pools/018f0000-0000-7000-8000-000000000000/actions/allocate', {});
    assert.equal(unknown.status, 404);
    const tooLong = await holder!.post(`/v1/pools/${pool}/actions/allocate`, { leaseSeconds: 30 * DAY });
    assert.equal(tooLong.status, 400, JSON.stringify(tooLong.body));
    assert.equal(tooLong.body.error.code, 'LEASE_TOO_LONG');
    assert.equal(tooLong.body.error.details.fields[0].field, 'leaseSeconds');
    const badImportance = await holder!.post(`/v1/pools/${pool}/actions/allocate`, { importance: 'urgent' });
    assert.equal(badImportance.status, 400);
    const badPool = await t.admin.post('/v1/pools', {
      name: 'bad',
      imageUuid: env.image,
      instanceOfferingUuid: env.small,
      l3NetworkUuids: [env.l3],
      warmTarget: 5,
      cap: 2,
      defaultLeaseSeconds: 8 * DAY,
      maxLeaseSeconds: 7 * DAY,
    });
    assert.equal(badPool.status, 400, JSON.stringify(badPool.body));
    const fields = (badPool.body.error.details.fields as Array<{ field: string }>).map((f) => f.field);
    assert.ok(fields.includes('defaultLeaseSeconds'), JSON.stringify(fields));
    const byTenant = await holder!.post('/v1/pools', { name: 'mine' });
    assert.ok([400, 403].includes(byTenant.status));
    assert.deepEqual(await counts(pool), before);
    const held = await t.db.db.selectFrom('leases').select('uuid').where('state', '<>', 'Ended').execute();
    assert.equal(held.length, 0, 'no lease left behind by a refusal');
  });

  test('an empty pool: policy fail refuses at once (POOL_EMPTY); policy wait serves the caller when a VM is ready', async () => {
    const empty = await makePool({ name: 'empty', warmTarget: 0, cap: 2, perUserLimit: 2 });
    const refused = await holder!.post(`/v1/pools/${empty}/actions/allocate`, {});
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'POOL_EMPTY');
    assert.equal(refused.body.error.retryable, true);

    await ok(t, 'PATCH', `/v1/pools/${empty}`, { emptyPolicy: 'wait', waitSeconds: 60 });
    const pending = await holder!.post(`/v1/pools/${empty}/actions/allocate`, {});
    assert.equal(pending.status, 202, JSON.stringify(pending.body));
    await ok(t, 'PATCH', `/v1/pools/${empty}`, { warmTarget: 1 });
    const done = await until(
      'the waiting allocation to be served',
      async () => (await holder!.get(`/v1/jobs/${pending.body.uuid}`)).body,
      (j) => j.state === 'Succeeded' || j.state === 'Failed',
      90_000,
    );
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    assert.equal(done.result.state, 'Active');
    assert.ok(done.result.vm.uuid);
  });
});
