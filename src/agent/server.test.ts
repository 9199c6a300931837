// The agent's HTTP server on its own (no parts, no root): authentication before anything,
// routing, body checks, and the one error shape for every failure.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { CloudError } from '../kernel/errors.js';
import { createAgentServer, MAX_BODY_BYTES } from './server.js';

const SECRET = 'the-agent-secret';
let base = '';
/** what onCommand saw: the self-fence's contact (authenticated commands only) */
const contacts: string[] = [];
const server = createAgentServer({
  secret: SECRET,
  log: pino({ level: 'silent' }),
  onCommand: (command) => contacts.push(command),
  handlers: {
    'host.ping': async () => ({ uptimeSeconds: 42 }),
    'vm.pause': async ({ vmUuid }) => {
      throw new CloudError('NotFound', 'AGENT_VM_NOT_FOUND', `VM ${vmUuid} is not defined on this host`);
    },
    'vm.resume': async () => {
      throw new Error('qemu exploded');
    },
  },
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, ...headers },
    body,
  });
  return {
    status: res.status,
    body: (await res.json()) as { error?: Record<string, unknown> } & Record<string, unknown>,
    res,
  };
}

test('nothing answers without the secret, not even an unknown route', async () => {
  for (const auth of ['', 'Bearer wrong', `Bearer ${SECRET}x`, SECRET, `Basic ${SECRET}`]) {
    const r = await post('/v1/commands/host.ping', '{}', { authorization: auth });
    assert.equal(r.status, 401, `authorization '${auth}'`);
    assert.equal(r.body.error?.code, 'AGENT_UNAUTHENTICATED');
  }
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 401);
});

test('a command answers 200 with its response; the request id is echoed', async () => {
  const r = await post('/v1/commands/host.ping', '', { 'x-request-id': 'req-123' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { uptimeSeconds: 42 });
  assert.equal(r.res.headers.get('x-request-id'), 'req-123');
});

test('unknown command 404, wrong method, malformed or non-object body 400, too large 400', async () => {
  const unknown = await post('/v1/commands/vm.fly', '{}');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error?.code, 'AGENT_COMMAND_UNKNOWN');
  const route = await post('/v2/other', '{}');
  assert.equal(route.status, 404);
  const get = await fetch(`${base}/v1/commands/host.ping`, {
    headers: { authorization: `Bearer ${SECRET}` },
  });
  assert.equal(get.status, 400);
  const malformed = await post('/v1/commands/host.ping', '{"a":');
  assert.equal(malformed.status, 400);
  assert.match(String(malformed.body.error?.message), /not valid JSON/);
  for (const body of ['[]', 'null', '"x"', '3']) {
    const r = await post('/v1/commands/host.ping', body);
    assert.equal(r.status, 400, body);
    assert.match(String(r.body.error?.message), /must be a JSON object/);
  }
  const big = await post('/v1/commands/host.ping', `{"x":"${'a'.repeat(MAX_BODY_BYTES)}"}`);
  assert.equal(big.status, 400);
  assert.equal(big.body.error?.code, 'AGENT_BODY_TOO_LARGE');
});

test("a handler's CloudError keeps its status; any other error is AGENT_INTERNAL with no stack", async () => {
  const nf = await post('/v1/commands/vm.pause', '{"vmUuid":"v1"}');
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.body, {
    error: { code: 'AGENT_VM_NOT_FOUND', reason: 'NotFound', message: 'VM v1 is not defined on this host' },
  });
  const boom = await post('/v1/commands/vm.resume', '{"vmUuid":"v1"}');
  assert.equal(boom.status, 500);
  assert.deepEqual(boom.body, {
    error: { code: 'AGENT_INTERNAL', reason: 'Internal', message: 'qemu exploded' },
  });
});

test('onCommand hears authenticated commands only (the self-fence counts them as contact)', async () => {
  contacts.length = 0;
  await fetch(`${base}/v1/commands/host.ping`, { method: 'POST', body: '{}' });
  await fetch(`${base}/v1/commands/host.ping`, {
    method: 'POST',
    body: '{}',
    headers: { authorization: 'Bearer wrong' },
  });
  assert.deepEqual(contacts, []);
  assert.equal((await post('/v1/commands/host.ping', '{}')).status, 200);
  assert.deepEqual(contacts, ['host.ping']);
});
