/**
 * Adaptive sizing of a pool on simulated hosts, through the API, on a clock the test moves (the
 * node's own stock pass is off: the test runs each pass with the `now` it wants). A burst beyond
 * the threshold raises the cap and warm target to 1.5×, a bigger one to 2×; the pool never holds
 * more than the cap in force; when demand falls it converges back one step per calm window, each
 * change an event with its reason.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildNetEnv, type NetEnv } from './network-fixtures.js';
import { makePool, poolCounts, poolService, tenantWithUsers, until } from './pool-fixtures.js';
import { GiB, ok } from './vm-env.js';

let t: TestNode;
let env: NetEnv;
let dev: Api | undefined;

before(async () => {
  // the periodic stock pass never runs by itself here: the test tends the pool on its clock
  t = await startTestNode({ settings: { poolStockIntervalSeconds: 3600 } });
  env = await buildNetEnv(t, { hosts: 2, hostCpu: 64, hostMemory: 256 * GiB, prefix: 'size' });
  [dev] = (await tenantWithUsers(t, 'burst', 1)).users;
});

after(async () => {
  await t?.stop();
});

test('a burst raises the cap 1.5× then 2× (never exceeded), and the pool converges back step by step', async () => {
  const pool = await makePool(t, env, {
    name: 'burst-pool',
    warmTarget: 4,
    cap: 6,
    perUserLimit: 50,
    burstWindowSeconds: 60,
  });
  const shown = (await t.admin.get(`/v1/pools/${pool}`)).body;
  assert.equal(shown.burstThreshold, null, 'threshold: the warm target unless set');
  assert.equal(shown.burstFactor, 1.5);
  assert.equal(shown.burstMaxFactor, 2);
  assert.equal(shown.sizeFactor, 1);
  assert.equal(shown.effectiveCap, 6);

  const size = async () => {
    const p = (await t.admin.get(`/v1/pools/${pool}`)).body;
    return {
      factor: p.sizeFactor as number,
      cap: p.effectiveCap as number,
      warm: p.effectiveWarmTarget as number,
    };
  };
  /** tends the pool at `now` until `done`, checking at every step that it keeps to its cap */
  const tendUntil = async (
    what: string,
    done: (c: Awaited<ReturnType<typeof poolCounts>>) => boolean,
    now?: () => Date,
  ) =>
    until(
      what,
      async () => {
        await poolService(t).tend(pool, now?.());
        const c = await poolCounts(t, pool);
        const s = await size();
        // never above the cap in force by its own doing: when a shrink leaves it above, it makes none
        assert.ok(
          c.total <= s.cap || c.Provisioning === 0,
          `the pool makes VMs while it holds ${c.total}, more than its cap in force ${s.cap}`,
        );
        return c;
      },
      done,
      120_000,
    );
  const allocate = async (n: number) => {
    const out: Array<{ status: number; body: any }> = [];
    for (let i = 0; i < n; i++) out.push(await dev!.post(`/v1/pools/${pool}/actions/allocate`, {}));
    return out;
  };

  await tendUntil('4 ready VMs', (c) => c.Ready === 4);

  // 5 requests in the window (4 served, 1 refused: the pool was empty) > threshold 4 → 1.5×
  const first = await allocate(5);
  assert.deepEqual(
    first.map((r) => r.status),
    [200, 200, 200, 200, 409],
  );
  assert.equal(first[4]!.body.error.code, 'POOL_EMPTY');
  await poolService(t).tend(pool);
  assert.deepEqual(await size(), { factor: 1.5, cap: 9, warm: 6 });
  const grown = await tendUntil('the pool to grow to its cap of 9', (c) => c.Ready === 5);
  assert.equal(grown.Allocated, 4);

  // 4 more: 9 requests > twice the threshold → 2×
  const second = await allocate(4);
  assert.ok(
    second.every((r) => r.status === 200),
    JSON.stringify(second.map((r) => r.status)),
  );
  await poolService(t).tend(pool);
  assert.deepEqual(await size(), { factor: 2, cap: 12, warm: 8 });
  const full = await tendUntil('the pool to grow to its cap of 12', (c) => c.Ready === 4);
  assert.equal(full.Allocated, 8);
  assert.equal(full.total, 12);

  // a calm window later: one step down to 1.5× (cap 9); the 12 it holds are above it, so it makes
  // nothing new until VMs leave
  const t1 = new Date(Date.now() + 61_000);
  await poolService(t).tend(pool, t1);
  assert.deepEqual(await size(), { factor: 1.5, cap: 9, warm: 6 });
  assert.equal((await poolCounts(t, pool)).Provisioning, 0);
  // within the next window nothing more changes
  await poolService(t).tend(pool, new Date(t1.getTime() + 30_000));
  assert.equal((await size()).factor, 1.5);

  // the holders give back 6: the pool is trimmed and refilled within the cap in force, never above it
  const held = await t.db.db
    .selectFrom('leases')
    .select('uuid')
    .where('poolUuid', '=', pool)
    .where('state', '=', 'Active')
    .orderBy('createdAt')
    .execute();
  for (const l of held.slice(0, 6)) {
    const r = await dev!.job('POST', `/v1/leases/${l.uuid}/actions/release`, {});
    assert.equal(r.state, 'Succeeded', JSON.stringify(r));
  }
  const t2 = new Date(t1.getTime() + 61_000);
  await poolService(t).tend(pool, t2);
  assert.deepEqual(await size(), { factor: 1, cap: 6, warm: 4 });
  const calm = await tendUntil(
    'the pool back to its configured size',
    (c) => c.Discarding === 0 && c.Ready === 4,
    () => t2,
  );
  assert.equal(calm.Allocated, 2);
  assert.equal(calm.total, 6);

  const events = await t.db.db
    .selectFrom('events')
    .select(['type', 'data'])
    .where('resourceUuid', '=', pool)
    .where('type', '=', 'pool.resized')
    .orderBy('id')
    .execute();
  const steps = events.map((e) => {
    const d = e.data as { from: number; to: number; reason: string };
    return `${d.from}→${d.to}`;
  });
  assert.deepEqual(steps, ['1→1.5', '1.5→2', '2→1.5', '1.5→1']);
  const reasons = events.map((e) => (e.data as { reason: string }).reason);
  assert.match(reasons[0]!, /5 requests in the last 60 s, more than the threshold 4/);
  assert.match(reasons[1]!, /9 requests in the last 60 s, more than twice the threshold 4/);
  assert.match(reasons[2]!, /0 requests in the last 60 s, demand has fallen/);
  assert.match(reasons[3]!, /demand has fallen/);
});

test('burst settings are checked: a second factor below the first is refused, naming the field', async () => {
  const bad = await t.admin.post('/v1/pools', {
    name: 'bad-burst',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: [env.l3],
    warmTarget: 1,
    cap: 2,
    burstFactor: 3,
    burstMaxFactor: 2,
  });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.deepEqual(
    (bad.body.error.details.fields as Array<{ field: string }>).map((f) => f.field),
    ['burstMaxFactor'],
  );
  const tooBig = await t.admin.post('/v1/pools', {
    name: 'bad-burst',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: [env.l3],
    warmTarget: 1,
    cap: 2,
    burstFactor: 5,
  });
  assert.equal(tooBig.status, 400, JSON.stringify(tooBig.body));
  const pool = await makePool(t, env, { name: 'tuned', warmTarget: 0, cap: 2, burstThreshold: 10 });
  const patched = await ok(t, 'PATCH', `/v1/pools/${pool}`, { burstFactor: 1.25, burstWindowSeconds: 120 });
  assert.equal(patched.state, 'Succeeded');
  const p = (await t.admin.get(`/v1/pools/${pool}`)).body;
  assert.equal(p.burstFactor, 1.25);
  assert.equal(p.burstThreshold, 10);
  assert.equal(p.burstWindowSeconds, 120);
  const refused = await t.admin.job('PATCH', `/v1/pools/${pool}`, { burstFactor: 3 });
  assert.equal(refused.state, 'Failed', JSON.stringify(refused));
  assert.equal(refused.error.details.fields[0].field, 'burstMaxFactor');
});
