import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CloudError } from '../../kernel/errors.js';
import { AgentClient, type AgentEndpoint } from './agent-client.js';
import { commandTimeoutMs } from './timeouts.js';

const SECRET = 'a-secret-of-the-agent-0123456789';

interface Seen {
  command: string;
  auth: string | undefined;
  requestId: string | undefined;
  body: unknown;
}

/** A stand-in agent: answers by command name the way src/agent/server.ts does. */
function fakeAgent(seen: Seen[]): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const command = (req.url ?? '').replace('/v1/commands/', '');
      seen.push({
        command,
        auth: req.headers.authorization,
        requestId: req.headers['x-request-id'] as string | undefined,
        body: JSON.parse(Buffer.concat(chunks).toString() || '{}'),
      });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${SECRET}`)
        return json(401, {
          error: { code: 'AGENT_UNAUTHENTICATED', reason: 'Unauthenticated', message: 'no' },
        });
      if (command === 'host.ping') return json(200, { uptimeSeconds: 42 });
      if (command === 'vm.stop')
        return json(404, {
          error: {
            code: 'AGENT_VM_NOT_FOUND',
            reason: 'NotFound',
            message: 'no VM x here',
            details: { vmUuid: 'x' },
          },
        });
      if (command === 'vm.list') return; // never answers
      if (command === 'garbage') {
        res.writeHead(502);
        res.end('<html>bad gateway</html>');
        return;
      }
      json(404, { error: { code: 'AGENT_COMMAND_UNKNOWN', reason: 'NotFound', message: command } });
    });
  });
}

describe('AgentClient against a stand-in agent', () => {
  const seen: Seen[] = [];
  let server: Server;
  let endpoint: AgentEndpoint;
  const client = new AgentClient();
  let connections = 0;

  before(async () => {
    server = fakeAgent(seen);
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, secret: SECRET };
  });
  after(() => {
    client.close();
    server.closeAllConnections();
    server.close();
  });

  test('a command carries the bearer secret, a request id and its body; the answer comes back', async () => {
    const res = await client.command(
      endpoint,
      'host.ping',
      { a: 1 },
      { timeoutMs: 5000, requestId: 'req-1' },
    );
    assert.deepEqual(res, { uptimeSeconds: 42 });
    const last = seen.at(-1)!;
    assert.deepEqual(last, {
      command: 'host.ping',
      auth: `Bearer ${SECRET}`,
      requestId: 'req-1',
      body: { a: 1 },
    });
  });

  test('sockets are kept alive between commands', async () => {
    const before = connections;
    for (let i = 0; i < 5; i++) await client.command(endpoint, 'host.ping', {}, { timeoutMs: 5000 });
    assert.ok(connections - before <= 1, `${connections - before} new connections for 5 commands`);
  });

  test("the agent's refusal comes back with its code, reason and details, the address added", async () => {
    await assert.rejects(client.command(endpoint, 'vm.stop', {}, { timeoutMs: 5000 }), (err: CloudError) => {
      assert.equal(err.code, 'AGENT_VM_NOT_FOUND');
      assert.equal(err.reason, 'NotFound');
      assert.equal(err.details?.vmUuid, 'x');
      assert.equal(err.details?.address, endpoint.baseUrl);
      return true;
    });
  });

  test('a wrong secret is HOST_AGENT_SECRET_REJECTED, and the secret is in no part of the error', async () => {
    const wrong = { ...endpoint, secret: 'the-wrong-secret-0123456789' };
    await assert.rejects(client.command(wrong, 'host.ping', {}, { timeoutMs: 5000 }), (err: CloudError) => {
      assert.equal(err.code, 'HOST_AGENT_SECRET_REJECTED');
      assert.equal(err.retryable, false);
      assert.ok(!JSON.stringify(err.toBody()).includes('the-wrong-secret'));
      return true;
    });
  });

  test('an answer that is not the error shape is AGENT_BAD_ANSWER', async () => {
    await assert.rejects(client.command(endpoint, 'garbage', {}, { timeoutMs: 5000 }), {
      code: 'AGENT_BAD_ANSWER',
    });
  });

  test('no answer before the deadline is HOST_UNREACHABLE, retryable (as a powered-off simulated host)', async () => {
    const started = Date.now();
    await assert.rejects(client.command(endpoint, 'vm.list', {}, { timeoutMs: 300 }), (err: CloudError) => {
      assert.equal(err.code, 'HOST_UNREACHABLE');
      assert.equal(err.reason, 'Unavailable');
      assert.equal(err.retryable, true);
      assert.equal(err.details?.timeoutMs, 300);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });

  test('a refused connection is HOST_UNREACHABLE, retryable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(
      client.command(
        { baseUrl: `http://127.0.0.1:${port}`, secret: SECRET },
        'host.ping',
        {},
        { timeoutMs: 5000 },
      ),
      (err: CloudError) =>
        err.code === 'HOST_UNREACHABLE' && err.retryable && err.details?.errno === 'ECONNREFUSED',
    );
  });

  test('an agent that restarted (kept-alive socket closed) gets the command again on a new socket', async () => {
    await client.command(endpoint, 'host.ping', {}, { timeoutMs: 5000 });
    server.closeIdleConnections();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await client.command(endpoint, 'host.ping', {}, { timeoutMs: 5000 }), {
      uptimeSeconds: 42,
    });
  });
});

test('long commands get long deadlines, questions short ones', () => {
  assert.ok(commandTimeoutMs('vm.migrate') >= 10 * 60_000);
  assert.ok(commandTimeoutMs('image.cache') >= 30 * 60_000);
  assert.ok(commandTimeoutMs('vm.stop') > 60_000, 'longer than the agent’s own ACPI wait');
  assert.ok(commandTimeoutMs('vm.list') <= 15_000);
  assert.equal(commandTimeoutMs('something.new'), 60_000);
});
