/**
 * The holder's quota on pool hand-outs, charged at COMMIT (identity/quota/at-commit.ts): still
 * atomic. 10 users of an account with room for 5 VMs take VMs at once: exactly 5 are served, the
 * other 5 are refused with QUOTA_EXCEEDED naming the quota, and a refusal changes nothing (no
 * lease, the VM still Ready in the pool, the pool account's, the quota unchanged).
 * One user asking several times at once is held to the per-user limit the same way.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { buildNetEnv, type NetEnv } from './network-fixtures.js';
import { makePool, poolCounts, poolService, tenantWithUsers, until } from './pool-fixtures.js';
import { GiB } from './vm-env.js';

let t: TestNode;
let env: NetEnv;

before(async () => {
  // the test tends the pool itself: no refill between the hand-outs and the checks
  t = await startTestNode({ settings: { poolStockIntervalSeconds: 3600 } });
  env = await buildNetEnv(t, { hosts: 2, hostCpu: 64, hostMemory: 256 * GiB, prefix: 'pq' });
});

after(async () => {
  await t?.stop();
});

test('10 users of an account with room for 5 take VMs at once: 5 served, 5 refused, the refusals change nothing', async () => {
  const { account, users } = await tenantWithUsers(t, 'tight', 10);
  const limited = await t.admin.patch(`/v1/quotas/${account}`, { 'vm.num': 5 });
  assert.ok([200, 202].includes(limited.status), JSON.stringify(limited.body));
  const pool = await makePool(t, env, { name: 'tight-pool', warmTarget: 10, cap: 20, burstThreshold: 1000 });
  await until(
    '10 ready VMs',
    async () => {
      await poolService(t).tend(pool);
      return poolCounts(t, pool);
    },
    (c) => c.Ready === 10,
    120_000,
  );

  const answers = await Promise.all(users.map((u) => u.post(`/v1/pools/${pool}/actions/allocate`, {})));
  const served = answers.filter((a) => a.status === 200);
  const refused = answers.filter((a) => a.status !== 200);
  assert.equal(served.length, 5, JSON.stringify(answers.map((a) => a.status)));
  for (const r of refused) {
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal(r.body.error.details.quota, 'vm.num');
    assert.equal(r.body.error.details.limit, 5);
  }
  const c = await poolCounts(t, pool);
  assert.deepEqual([c.Allocated, c.Ready], [5, 5], 'the refused ones left their VMs in the pool');
  const leases = await t.db.db.selectFrom('leases').select('state').where('poolUuid', '=', pool).execute();
  assert.equal(leases.length, 5, 'no lease for a refusal');
  const vms = await t.db.db.selectFrom('vms').select('uuid').where('accountUuid', '=', account).execute();
  assert.equal(vms.length, 5, 'only the served VMs are the account’s');
  const used = await t.db.db
    .selectFrom('quotas')
    .select(['name', 'used'])
    .where('accountUuid', '=', account)
    .where('name', 'in', ['vm.num', 'vm.cpu'])
    .orderBy('name')
    .execute();
  const cpu = await t.db.db
    .selectFrom('vms')
    .select((eb) => eb.fn.sum<string>('cpu').as('n'))
    .where('accountUuid', '=', account)
    .executeTakeFirstOrThrow();
  assert.deepEqual(
    used.map((u) => [u.name, Number(u.used)]),
    [
      ['vm.cpu', Number(cpu.n)],
      ['vm.num', 5],
    ],
  );
  const charges = await t.db.db.selectFrom('quotaCharges').select('id').execute();
  assert.equal(charges.length, 0, 'every charge was applied and removed at its commit');
});

test('one user asking 6 times at once from a pool with a per-user limit of 2: 2 served, 4 refused, the refusals change nothing', async () => {
  // the limit is counted after the hand-out, under the (pool, user) lock (lease/hand-out.ts):
  // the user's concurrent requests queue there and each counts what the others committed
  const { account, users } = await tenantWithUsers(t, 'eager', 1);
  const pool = await makePool(t, env, {
    name: 'eager-pool',
    warmTarget: 8,
    cap: 10,
    perUserLimit: 2,
    burstThreshold: 1000,
  });
  await until(
    '8 ready VMs',
    async () => {
      await poolService(t).tend(pool);
      return poolCounts(t, pool);
    },
    (c) => c.Ready === 8,
    120_000,
  );
  const user = users[0]!;
  const answers = await Promise.all(
    Array.from({ length: 6 }, () => user.post(`/v1/pools/${pool}/actions/allocate`, {})),
  );
  const served = answers.filter((a) => a.status === 200);
  assert.equal(served.length, 2, JSON.stringify(answers.map((a) => [a.status, a.body?.error?.code])));
  for (const r of answers.filter((a) => a.status !== 200)) {
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'POOL_USER_LIMIT');
  }
  const c = await poolCounts(t, pool);
  assert.deepEqual([c.Allocated, c.Ready], [2, 6], 'the refused ones left their VMs in the pool');
  const leases = await t.db.db.selectFrom('leases').select('state').where('poolUuid', '=', pool).execute();
  assert.equal(leases.length, 2, 'no lease for a refusal');
  const vms = await t.db.db.selectFrom('vms').select('uuid').where('accountUuid', '=', account).execute();
  assert.equal(vms.length, 2, 'only the served VMs are the account’s');
  const used = await t.db.db
    .selectFrom('quotas')
    .select('used')
    .where('accountUuid', '=', account)
    .where('name', '=', 'vm.num')
    .executeTakeFirstOrThrow();
  assert.equal(Number(used.used), 2, 'charged for the served ones only');
});
