/**
 * Accounts and sessions: deleting an account (refused while it owns resources, then revoking
 * every session of its users at once), a password change revoking the user's other sessions,
 * failed-login throttling per name and per source address, and a failed login costing the same
 * whether or not the account exists.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { startTestNode, type TestNode } from '../support/node.js';

/** A login from a chosen loopback address (127.0.0.0/8 is all local), so tests own their source budget. */
function loginFrom(
  url: string,
  from: string,
  body: Record<string, string>,
): Promise<{ status: number; body: any; retryAfter?: string; ms: number }> {
  const target = new URL('/v1/auth/login', url);
  const text = JSON.stringify(body);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
        });
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const retryAfter = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            body: data ? JSON.parse(data) : undefined,
            ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
            ms,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describe('accounts, sessions and logins', () => {
  let t: TestNode;
  const mkAccount = async (name: string) => {
    const job = await t.admin.job('POST', '/v1/accounts', { name, password: `${name}-password` });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    return job.resourceUuid as string;
  };
  before(async () => {
    t = await startTestNode();
  });
  after(() => t.stop());

  test('deleting an account is refused while it owns resources, then revokes its sessions at once', async () => {
    const uuid = await mkAccount('doomed');
    const owner = await t.anon.login('doomed', 'doomed-password');
    const user = await owner.job('POST', '/v1/users', { name: 'second', password: 'second-password' });
    assert.equal(user.state, 'Succeeded', JSON.stringify(user));
    const second = await t.anon.login('doomed', 'second-password', 'second');
    const sg = await owner.job('POST', '/v1/security-groups', { name: 'web' });
    assert.equal(sg.state, 'Succeeded', JSON.stringify(sg));

    const refused = await t.admin.delete(`/v1/accounts/${uuid}`);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'ACCOUNT_NOT_EMPTY');
    // its default security group (made on first use) is not something the tenant must delete
    assert.deepEqual(refused.body.error.details.owned, { 'security-groups': 1 });
    assert.equal((await owner.get('/v1/auth/whoami')).status, 200, 'a refused delete changes nothing');

    const gone = await owner.job('DELETE', `/v1/security-groups/${sg.resourceUuid}`);
    assert.equal(gone.state, 'Succeeded', JSON.stringify(gone));
    const del = await t.admin.job('DELETE', `/v1/accounts/${uuid}`);
    assert.equal(del.state, 'Succeeded', JSON.stringify(del));

    for (const api of [owner, second]) {
      const res = await api.get('/v1/auth/whoami');
      assert.equal(res.status, 401, 'a deleted account’s token stops working at once');
      assert.equal(res.body.error.code, 'TOKEN_INVALID');
    }
    assert.equal((await t.admin.get(`/v1/accounts/${uuid}`)).status, 404);
    const users = await t.db.db.selectFrom('users').select('uuid').where('accountUuid', '=', uuid).execute();
    assert.deepEqual(users, []);
    const sessions = await t.db.db
      .selectFrom('sessions')
      .select('uuid')
      .where('accountUuid', '=', uuid)
      .execute();
    assert.deepEqual(sessions, []);
    const groups = await t.db.db
      .selectFrom('securityGroups')
      .select('uuid')
      .where('accountUuid', '=', uuid)
      .execute();
    assert.deepEqual(groups, [], 'the default group went with the account');
    const login = await t.anon.post('/v1/auth/login', { account: 'doomed', password: 'doomed-password' });
    assert.equal(login.status, 401);
    const event = await t.admin.get(`/v1/events?q=type=account.deleted&q=resourceUuid=${uuid}`);
    assert.equal(event.body.items.length, 1);
    assert.equal(event.body.items[0].data.sessionsRevoked, 2);
  });

  test('the admin account cannot be deleted', async () => {
    const who = await t.admin.get('/v1/auth/whoami');
    const res = await t.admin.delete(`/v1/accounts/${who.body.accountUuid}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'ACCOUNT_IS_ADMIN');
  });

  test("a password change revokes the user's other sessions, not the one making it", async () => {
    await mkAccount('pw');
    const a = await t.anon.login('pw', 'pw-password');
    const b = await t.anon.login('pw', 'pw-password');
    const me = (await a.get('/v1/auth/whoami')).body.userUuid as string;
    assert.equal((await b.get('/v1/auth/whoami')).status, 200); // b's validation is now cached
    const job = await a.job('PATCH', `/v1/users/${me}`, { password: 'new-pw-password' });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal((await a.get('/v1/auth/whoami')).status, 200, 'the changing session stays');
    const revoked = await b.get('/v1/auth/whoami');
    assert.equal(revoked.status, 401, 'the other session ends at once, cached or not');
    assert.equal(revoked.body.error.code, 'TOKEN_INVALID');
    assert.equal(
      (await t.anon.post('/v1/auth/login', { account: 'pw', password: 'pw-password' })).status,
      401,
    );
    const c = await t.anon.login('pw', 'new-pw-password');

    // the event says the password changed, never what it is (not even its hash)
    const events = await a.get(`/v1/events?q=resourceUuid=${me}&q=type?=user.updated,user.sessions.revoked`);
    const types = events.body.items.map((e: any) => e.type).sort();
    assert.deepEqual(types, ['user.sessions.revoked', 'user.updated']);
    assert.ok(!JSON.stringify(events.body).includes('scrypt'), JSON.stringify(events.body));

    // an admin changing it revokes every session of the user
    const byAdmin = await t.admin.job('PATCH', `/v1/users/${me}`, { password: 'third-pw-password' });
    assert.equal(byAdmin.state, 'Succeeded', JSON.stringify(byAdmin));
    for (const api of [a, c]) assert.equal((await api.get('/v1/auth/whoami')).status, 401);

    // a description change revokes nothing
    const d = await t.anon.login('pw', 'third-pw-password');
    const other = await t.anon.login('pw', 'third-pw-password');
    const renamed = await d.job('PATCH', `/v1/users/${me}`, { description: 'still me' });
    assert.equal(renamed.state, 'Succeeded');
    assert.equal((await other.get('/v1/auth/whoami')).status, 200);
  });

  test('a deleted user’s sessions end at once', async () => {
    await mkAccount('team');
    const owner = await t.anon.login('team', 'team-password');
    const u = await owner.job('POST', '/v1/users', { name: 'temp', password: 'temp-password' });
    const temp = await t.anon.login('team', 'temp-password', 'temp');
    assert.equal((await temp.get('/v1/auth/whoami')).status, 200);
    const del = await owner.job('DELETE', `/v1/users/${u.resourceUuid}`);
    assert.equal(del.state, 'Succeeded', JSON.stringify(del));
    assert.equal((await temp.get('/v1/auth/whoami')).status, 401);
  });

  test('failed logins are throttled per name: 429 with Retry-After, the right password too', async () => {
    await mkAccount('acme');
    const from = '127.0.0.20';
    for (let i = 0; i < 5; i++) {
      const res = await loginFrom(t.url, from, { account: 'acme', password: 'wrong-password' });
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    const blocked = await loginFrom(t.url, from, { account: 'acme', password: 'acme-password' });
    assert.equal(blocked.status, 429, JSON.stringify(blocked.body));
    assert.equal(blocked.body.error.code, 'LOGIN_THROTTLED');
    assert.equal(blocked.body.error.reason, 'Throttled');
    const after = Number(blocked.retryAfter);
    assert.ok(after >= 1 && after <= 60, `Retry-After ${blocked.retryAfter}`);
    assert.equal(blocked.body.error.details.retryAfterSeconds, after);
    // from elsewhere too: the name is throttled, not the address
    const elsewhere = await loginFrom(t.url, '127.0.0.21', { account: 'acme', password: 'acme-password' });
    assert.equal(elsewhere.status, 429);
    // another name from the same address is not
    await mkAccount('globex');
    const other = await loginFrom(t.url, from, { account: 'globex', password: 'globex-password' });
    assert.equal(other.status, 200, JSON.stringify(other.body));

    // a name that does not exist is throttled exactly the same way
    const ghost = `ghost-${newId().slice(-6)}`;
    const answers: number[] = [];
    for (let i = 0; i < 6; i++)
      answers.push((await loginFrom(t.url, '127.0.0.22', { account: ghost, password: 'x' })).status);
    assert.deepEqual(answers, [401, 401, 401, 401, 401, 429]);
  });

  test('a success clears the name’s failures', async () => {
    await mkAccount('initech');
    const from = '127.0.0.23';
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4; i++)
        assert.equal((await loginFrom(t.url, from, { account: 'initech', password: 'nope' })).status, 401);
      const ok = await loginFrom(t.url, from, { account: 'initech', password: 'initech-password' });
      assert.equal(ok.status, 200, `round ${round}: ${JSON.stringify(ok.body)}`);
    }
  });

  test('failed logins are throttled per source address', async () => {
    const from = '127.0.0.24';
    for (let i = 0; i < 20; i++) {
      const res = await loginFrom(t.url, from, { account: `nobody-${i}`, password: 'x' });
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    await mkAccount('hooli');
    const blocked = await loginFrom(t.url, from, { account: 'hooli', password: 'hooli-password' });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.retryAfter) >= 1);
    const other = await loginFrom(t.url, '127.0.0.25', { account: 'hooli', password: 'hooli-password' });
    assert.equal(other.status, 200);
  });

  test('a failed login takes as long whether or not the account exists', async () => {
    // timing is a security property here (account names must not be listable), so this one test
    // compares times: medians of 10, a generous factor; the bug was 57 ms against 2 ms
    const existing: string[] = [];
    for (const n of ['t1', 't2', 't3']) {
      await mkAccount(`timing-${n}`);
      existing.push(`timing-${n}`);
    }
    const known: number[] = [];
    const unknown: number[] = [];
    // budgets: at most 4 failures per existing name, at most 8 per source address
    for (let i = 0; i < 12; i++) {
      const from = `127.0.1.${Math.floor(i / 4) + 1}`;
      const a = await loginFrom(t.url, from, { account: existing[i % 3]!, password: 'wrong-password' });
      const b = await loginFrom(t.url, from, {
        account: `absent-${i}-${newId().slice(-6)}`,
        password: 'wrong-password',
      });
      assert.equal(a.status, 401);
      assert.equal(b.status, 401);
      assert.deepEqual(a.body, b.body, 'the same answer');
      if (i >= 2) {
        // the first rounds warm up
        known.push(a.ms);
        unknown.push(b.ms);
      }
    }
    const k = median(known);
    const u = median(unknown);
    assert.ok(
      Math.max(k, u) / Math.min(k, u) < 2,
      `median ${k.toFixed(1)} ms (exists) vs ${u.toFixed(1)} ms (absent)`,
    );
  });
});
