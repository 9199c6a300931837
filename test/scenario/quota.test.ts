/**
 * Quotas through the API: every name listed with its default until changed, an account sees only
 * its own, only the admin sets limits (and not on itself), and enforcement is atomic: 200
 * concurrent data-volume creates against volume.data.num = 10 leave exactly 10 volumes and
 * used = 10, every refusal names the quota and creates nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUOTA_DEFAULTS, QUOTA_NAMES } from '../../src/resources/identity/quota/quota.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';
import { GiB, type Infra, ok, sharedStorage, tenant, used } from './volume-fixtures.js';

let t: TestNode;
let infra: Infra;
let nfs: string;
let a: { api: Api; uuid: string };
let b: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'quota');
  nfs = await sharedStorage(t, infra, 100_000 * GiB);
  a = await tenant(t);
  b = await tenant(t);
});
after(() => t.stop());

const quotasOf = async (api: Api, account: string) => {
  const res = await api.get(`/v1/quotas?q=accountUuid=${account}&limit=100`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return Object.fromEntries(
    (res.body.items as Array<{ name: string; limit: number; used: number }>).map((q) => [
      q.name,
      { limit: q.limit, used: q.used },
    ]),
  );
};

describe('listing', () => {
  test('an account sees every quota name with its default limit and usage, and only its own', async () => {
    const mine = await quotasOf(a.api, a.uuid);
    assert.deepEqual(
      mine,
      Object.fromEntries(QUOTA_NAMES.map((n) => [n, { limit: QUOTA_DEFAULTS[n], used: 0 }])),
    );
    const all = await a.api.get('/v1/quotas?limit=1000');
    assert.ok(all.body.items.every((q: { accountUuid: string }) => q.accountUuid === a.uuid));
    assert.deepEqual(await quotasOf(a.api, b.uuid), {}, 'another account’s quotas are invisible');
    const row = all.body.items[0];
    assert.equal((await b.api.get(`/v1/quotas/${row.uuid}`)).status, 404);
    assert.equal((await a.api.get(`/v1/quotas/${row.uuid}`)).body.name, row.name);
    const admin = await t.admin.get(`/v1/quotas?q=name=vm.num&count=true`);
    assert.ok(admin.body.total >= 2, 'the admin sees every account’s');
  });

  test('usage is queryable: a created volume shows in used', async () => {
    await ok(a.api, 'POST', '/v1/volumes', { name: 'q1', size: 2 * GiB, primaryStorageUuid: nfs });
    const q = await quotasOf(a.api, a.uuid);
    assert.equal(q['volume.data.num']!.used, 1);
    assert.equal(q['volume.capacity']!.used, 2 * GiB);
    const filtered = await a.api.get('/v1/quotas?q=used>0&sort=name');
    assert.deepEqual(
      filtered.body.items.map((i: { name: string }) => i.name),
      ['volume.capacity', 'volume.data.num'],
    );
  });
});

describe('setting limits', () => {
  test('only the admin, on a normal account; validated; a quota row’s uuid names its account too', async () => {
    let res = await a.api.patch(`/v1/quotas/${a.uuid}`, { 'vm.num': 99 });
    assert.equal(res.status, 403);
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    res = await t.admin.patch(`/v1/quotas/${admin.uuid}`, { 'vm.num': 5 });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'QUOTA_NOT_APPLICABLE');
    res = await t.admin.patch(`/v1/quotas/${b.uuid}`, { 'vm.nums': 5, 'vm.cpu': -1 });
    assert.equal(res.status, 400);
    const fields = res.body.error.details.fields.map((f: { field: string }) => f.field).sort();
    assert.deepEqual(fields, ['vm.cpu', 'vm.nums']);
    res = await t.admin.patch(`/v1/quotas/${b.uuid}`, {});
    assert.equal(res.status, 400);
    const job = await ok(t.admin, 'PATCH', `/v1/quotas/${b.uuid}`, { 'vm.num': 50, 'vm.memory': 64 * GiB });
    const byName = Object.fromEntries(
      job.result.map((q: { name: string; limit: number }) => [q.name, q.limit]),
    );
    assert.equal(byName['vm.num'], 50);
    assert.equal(byName['vm.memory'], 64 * GiB);
    assert.equal(byName['vm.cpu'], QUOTA_DEFAULTS['vm.cpu']);
    const row = (await b.api.get('/v1/quotas?q=name=image.num')).body.items[0];
    await ok(t.admin, 'PATCH', `/v1/quotas/${row.uuid}`, { 'image.num': 3 });
    assert.equal((await quotasOf(b.api, b.uuid))['image.num']!.limit, 3);
    const missing = await t.admin.patch('/v1/quotas/00000000-0000-7000-8000-000000000000', { 'vm.num': 1 });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'ACCOUNT_NOT_FOUND');
  });

  test('a limit below usage takes nothing away; new reservations are refused', async () => {
    const c = await tenant(t);
    await ok(c.api, 'POST', '/v1/volumes', { name: 'keep', size: GiB, primaryStorageUuid: nfs });
    await ok(c.api, 'POST', '/v1/volumes', { name: 'keep2', size: GiB, primaryStorageUuid: nfs });
    await ok(t.admin, 'PATCH', `/v1/quotas/${c.uuid}`, { 'volume.data.num': 1 });
    assert.deepEqual((await quotasOf(c.api, c.uuid))['volume.data.num'], { limit: 1, used: 2 });
    const res = await c.api.post('/v1/volumes', { name: 'more', size: GiB, primaryStorageUuid: nfs });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'QUOTA_EXCEEDED');
  });
});

describe('atomic enforcement', () => {
  test('200 concurrent creates against volume.data.num = 10: exactly 10 volumes, used = 10, refusals name the quota', async () => {
    const c = await tenant(t);
    await ok(t.admin, 'PATCH', `/v1/quotas/${c.uuid}`, { 'volume.data.num': 10 });
    const capacity = await used(t, nfs);
    const jobsBefore = (await t.admin.get('/v1/jobs?q=kind=volume.create&count=true&limit=0')).body.total;
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        c.api.call('POST', '/v1/volumes?wait=true', {
          name: `burst-${i}`,
          size: GiB,
          primaryStorageUuid: nfs,
        }),
      ),
    );
    const accepted = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 409);
    assert.equal(
      accepted.length,
      10,
      JSON.stringify(answers.filter((r) => r.status !== 409 && r.status !== 200).map((r) => r.body)),
    );
    assert.equal(refused.length, 190);
    assert.ok(accepted.every((r) => r.body.state === 'Succeeded'));
    for (const r of refused) {
      assert.equal(r.body.error.code, 'QUOTA_EXCEEDED');
      assert.equal(r.body.error.details.quota, 'volume.data.num');
      assert.equal(r.body.error.details.limit, 10);
    }
    const volumes = await t.db.db
      .selectFrom('volumes')
      .select('uuid')
      .where('accountUuid', '=', c.uuid)
      .execute();
    assert.equal(volumes.length, 10);
    const q = await quotasOf(c.api, c.uuid);
    assert.deepEqual(q['volume.data.num'], { limit: 10, used: 10 });
    assert.equal(q['volume.capacity']!.used, 10 * GiB);
    assert.equal(await used(t, nfs), capacity + 10 * GiB, 'refused creates took no capacity');
    const jobsAfter = (await t.admin.get('/v1/jobs?q=kind=volume.create&count=true&limit=0')).body.total;
    assert.equal(jobsAfter - jobsBefore, 10, 'a refusal submits no job');
  });
});
