import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_PASSWORD, Api, startTestNode, type TestNode } from '../support/node.js';

describe('authentication and account isolation', () => {
  let t: TestNode;
  let tenant: Api;
  let other: Api;
  before(async () => {
    t = await startTestNode();
    for (const name of ['acme', 'globex']) {
      const job = await t.admin.job('POST', '/v1/accounts', { name, password: `${name}-password` });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    }
    tenant = await t.anon.login('acme', 'acme-password');
    other = await t.anon.login('globex', 'globex-password');
  });
  after(() => t.stop());

  test('no token, a malformed header and an unknown token are 401 with distinct codes', async () => {
    const none = await t.anon.get('/v1/zones');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'TOKEN_MISSING');
    const basic = await t.anon.call('GET', '/v1/zones', undefined, { authorization: 'Basic abc' });
    assert.equal(basic.status, 401);
    const unknown = await new Api(t.url, 'not-a-real-token').get('/v1/zones');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.code, 'TOKEN_INVALID');
  });

  test('wrong password and unknown account fail the same way', async () => {
    const wrong = await t.anon.post('/v1/auth/login', { account: 'admin', password: 'nope' });
    const nobody = await t.anon.post('/v1/auth/login', { account: 'nobody', password: 'nope' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, nobody.body);
    assert.equal(wrong.body.error.code, 'LOGIN_FAILED');
  });

  test('health, metrics and the OpenAPI document need no token', async () => {
    assert.equal((await t.anon.get('/v1/health')).status, 200);
    assert.equal((await t.anon.get('/metrics')).status, 200);
    const doc = await t.anon.get('/v1/openapi.json');
    assert.equal(doc.status, 200);
    assert.ok(doc.body.paths['/v1/hosts']);
  });

  test('an expired token is refused with TOKEN_EXPIRED', async () => {
    const api = await t.anon.login('acme', 'acme-password');
    // acme's sessions only: the admin's token must stay valid once the 5 s validation cache lapses
    await t.db.db
      .updateTable('sessions')
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where('accountUuid', 'in', t.db.db.selectFrom('accounts').select('uuid').where('name', '=', 'acme'))
      .execute();
    const res = await new Api(t.url, `${api.token}`).get('/v1/jobs');
    // a token validated in the last seconds may be cached; a fresh node-level check must see expiry
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'TOKEN_EXPIRED');
    tenant = await t.anon.login('acme', 'acme-password');
    other = await t.anon.login('globex', 'globex-password');
    // every session was expired, the admin's too: the later tests need it (its cached
    // validation lasts only seconds, so they passed only when the suite ran fast)
    t.admin.token = (await t.anon.login('admin', ADMIN_PASSWORD)).token;
  });

  test('logout revokes the token', async () => {
    const api = await t.anon.login('acme', 'acme-password');
    assert.equal((await api.post('/v1/auth/logout')).status, 204);
    const res = await api.get('/v1/jobs');
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'TOKEN_INVALID');
  });

  test('infrastructure is admin-only: tenants cannot create zones nor see hosts', async () => {
    const create = await tenant.post('/v1/zones', { name: 'mine' });
    assert.equal(create.status, 403);
    assert.equal(create.body.error.reason, 'Forbidden');
    assert.equal((await tenant.get('/v1/hosts')).status, 403);
    assert.equal((await tenant.get('/v1/zones')).status, 200, 'zones are visible to every account');
  });

  test("another account's job and user are a 404, never a leak", async () => {
    const user = await tenant.job('POST', '/v1/users', { name: 'alice', password: 'alice-password' });
    assert.equal(user.state, 'Succeeded', JSON.stringify(user));
    const ownJob = await tenant.get(`/v1/jobs/${user.uuid}`);
    assert.equal(ownJob.status, 200);
    const leak = await other.get(`/v1/jobs/${user.uuid}`);
    assert.equal(leak.status, 404);
    assert.equal(leak.body.error.code, 'JOB_NOT_FOUND');
    assert.equal((await other.get(`/v1/users/${user.resourceUuid}`)).status, 404);
    const listed = await other.get(`/v1/jobs?q=uuid=${user.uuid}&count=true`);
    assert.equal(listed.body.total, 0);
    const patched = await other.patch(`/v1/users/${user.resourceUuid}`, { description: 'pwned' });
    assert.equal(patched.status, 404);
    // the admin sees everything
    assert.equal((await t.admin.get(`/v1/jobs/${user.uuid}`)).status, 200);
  });

  test("a tenant's users log in as that account and never see password hashes", async () => {
    const alice = await t.anon.login('acme', 'alice-password', 'alice');
    const me = await alice.get('/v1/auth/whoami');
    assert.equal(me.body.isAdmin, false);
    const users = await alice.get('/v1/users');
    assert.equal(users.status, 200);
    assert.ok(users.body.items.length >= 2);
    for (const u of users.body.items) assert.equal(u.passwordHash, undefined);
    assert.ok(!JSON.stringify(users.body).includes('scrypt$'));
  });

  test('events are scoped to the account', async () => {
    const mine = await tenant.get('/v1/events?count=true');
    assert.equal(mine.status, 200);
    const accounts = new Set(mine.body.items.map((e: { accountUuid: string }) => e.accountUuid));
    assert.ok(accounts.size <= 1);
    const all = await t.admin.get('/v1/events?count=true');
    assert.ok(all.body.total > mine.body.total);
  });
});
