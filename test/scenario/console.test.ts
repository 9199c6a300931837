/**
 * The VM console's rules on simulated hosts (a simulated host has no VNC, so these are the
 * refusals; the open console itself is test/real/console.real.test.ts): who may ask for a
 * console, what a token may open, and that a token is single-use, short-lived and unforgeable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { ConsoleTokens } from '../../src/resources/compute/console/tokens.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, runningVm, type VmEnv } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let tenant: Api;
let tenantUuid: string;
let adminVm: string;
let tenantVm: string;
let tokens: ConsoleTokens;
let adminUuid: string;

interface Refused {
  status: number;
  body: { error: { code: string; reason: string; message: string; details?: Record<string, unknown> } };
}

/** Opens /v1/console?token=…: the HTTP refusal of the handshake, or the open socket. */
function openConsole(token: string | undefined): Promise<Refused | WebSocket> {
  const wsUrl = `${t.url.replace(/^http/, 'ws')}/v1/console${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

async function refusal(token: string | undefined): Promise<Refused> {
  const got = await openConsole(token);
  if (got instanceof WebSocket) {
    got.terminate();
    assert.fail('the console opened');
  }
  return got;
}

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { hosts: 1, prefix: 'con' });
  adminVm = await runningVm(t, env);
  const acct = await t.admin.job('POST', '/v1/accounts', { name: 'con-tenant', password: 'tenant-password' });
  tenantUuid = acct.resourceUuid;
  tenant = await t.anon.login('con-tenant', 'tenant-password');
  const job = await tenant.job('POST', '/v1/vms', {
    name: 'con-tenant-vm',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  tenantVm = job.resourceUuid;
  adminUuid = (await t.admin.get('/v1/auth/whoami')).body.accountUuid;
  // the same database, so the same installation secret: tokens made here are the node's own
  tokens = new ConsoleTokens(t.db.db);
});
after(() => t.stop());

describe('asking for a console', () => {
  test('a VM on a simulated host: 409 VM_CONSOLE_UNAVAILABLE naming the host and its type', async () => {
    const res = await t.admin.post(`/v1/vms/${adminVm}/actions/console`, {});
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'VM_CONSOLE_UNAVAILABLE');
    assert.match(res.body.error.message, /hypervisor type simulator.*only kvm hosts/);
    assert.equal(res.body.error.details.hypervisorType, 'simulator');
  });

  test("a tenant asks for its own VM's console (refused only for the host), never another account's", async () => {
    const own = await tenant.post(`/v1/vms/${tenantVm}/actions/console`, {});
    assert.equal(own.body.error.code, 'VM_CONSOLE_UNAVAILABLE');
    const other = await tenant.post(`/v1/vms/${adminVm}/actions/console`, {});
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'VM_NOT_FOUND');
    // before its body is looked at: a bad body tells nothing either
    const bad = await tenant.post(`/v1/vms/${adminVm}/actions/console`, { extra: 1 });
    assert.equal(bad.status, 404);
    const admin = await t.admin.post(`/v1/vms/${tenantVm}/actions/console`, {});
    assert.equal(admin.body.error.code, 'VM_CONSOLE_UNAVAILABLE', 'the admin may ask for any VM');
  });

  test('a VM that is not Running, an unknown VM, no login', async () => {
    const stopped = await runningVm(t, env);
    const stop = await t.admin.job('POST', `/v1/vms/${stopped}/actions/stop`, { force: true });
    assert.equal(stop.state, 'Succeeded');
    const res = await t.admin.post(`/v1/vms/${stopped}/actions/console`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_INVALID_STATE');
    assert.match(res.body.error.message, /it is Stopped; the console needs Running/);
    const unknown = await t.admin.post('/v1/vms/0190f0a0-0000-7000-8000-0000000000ff/actions/console', {});
    assert.equal(unknown.status, 404);
    const anon = await t.anon.post(`/v1/vms/${adminVm}/actions/console`, {});
    assert.equal(anon.status, 401);
  });

  test('the action is in the OpenAPI document with its answer', async () => {
    const doc = (await t.anon.get('/v1/openapi.json')).body;
    const op = doc.paths['/v1/vms/{uuid}/actions/console']?.post;
    assert.ok(op, 'POST /v1/vms/{uuid}/actions/console is documented');
    const schema = op.responses['200'].content['application/json'].schema;
    assert.deepEqual(Object.keys(schema.properties).sort(), ['expiresAt', 'protocol', 'token', 'url']);
  });
});

describe('the console WebSocket and its token', () => {
  test('no token, a malformed one and an altered one are refused before anything is looked up', async () => {
    const none = await refusal(undefined);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'CONSOLE_TOKEN_MISSING');
    assert.equal((await refusal('not-a-token')).body.error.code, 'CONSOLE_TOKEN_INVALID');
    const { token } = await tokens.issue(adminVm, { accountUuid: adminUuid, isAdmin: true });
    const [v, body, sig] = token.split('.') as [string, string, string];
    const flipped = `${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal((await refusal(`${v}.${body}.${flipped}`)).body.error.code, 'CONSOLE_TOKEN_INVALID');
    // claims for another VM under the original signature
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    claims[0] = tenantVm;
    const forged = `${v}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    assert.equal((await refusal(forged)).body.error.code, 'CONSOLE_TOKEN_INVALID');
  });

  test('an expired token is refused, saying when it expired', async () => {
    const past = new ConsoleTokens(t.db.db, { now: () => Date.now() - 120_000 });
    const { token } = await past.issue(adminVm, { accountUuid: adminUuid, isAdmin: true });
    const r = await refusal(token);
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'CONSOLE_TOKEN_EXPIRED');
    assert.ok(typeof r.body.error.details?.expiredAt === 'string');
  });

  test('a token is spent by its first use: the second is CONSOLE_TOKEN_USED', async () => {
    const { token } = await tokens.issue(adminVm, { accountUuid: adminUuid, isAdmin: true });
    const first = await refusal(token);
    // the first use passes the token rules and meets the host's: a simulated host has no VNC
    assert.equal(first.status, 409);
    assert.equal(first.body.error.code, 'VM_CONSOLE_UNAVAILABLE');
    const second = await refusal(token);
    assert.equal(second.status, 401);
    assert.equal(second.body.error.code, 'CONSOLE_TOKEN_USED');
  });

  test("a token is bound to its account: a tenant's token does not open another account's VM", async () => {
    const { token } = await tokens.issue(adminVm, { accountUuid: tenantUuid, isAdmin: false });
    const r = await refusal(token);
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'VM_NOT_FOUND');
  });

  test('a plain GET is refused and does not spend the token', async () => {
    const { token } = await tokens.issue(tenantVm, { accountUuid: tenantUuid, isAdmin: false });
    const plain = await t.anon.get(`/v1/console?token=${encodeURIComponent(token)}`);
    assert.equal(plain.status, 400);
    assert.equal(plain.body.error.code, 'CONSOLE_WEBSOCKET_REQUIRED');
    assert.equal(
      (await refusal(token)).body.error.code,
      'VM_CONSOLE_UNAVAILABLE',
      'the token was still unused',
    );
  });
});
