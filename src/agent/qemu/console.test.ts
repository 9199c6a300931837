// The console tunnel, both halves without QEMU: the agent's server with its console upgrade, a
// unix socket standing in for QEMU's vnc.sock (it greets like RFB and echoes), and the management
// side's client of the tunnel (drivers/kvm/console-tunnel.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { openAgentConsole } from '../../drivers/kvm/console-tunnel.js';
import type { CloudError } from '../../kernel/errors.js';
import { createAgentServer } from '../server.js';
import { type ConsoleVms, consoleUpgrade } from './console.js';
import { vmPaths } from './layout.js';

const SECRET = 'the-agent-secret-for-consoles';
const RUNNING = '0190f0a0-0000-7000-8000-000000000001';
const STOPPED = '0190f0a0-0000-7000-8000-000000000002';
const NO_SOCKET = '0190f0a0-0000-7000-8000-000000000003';
const UNKNOWN = '0190f0a0-0000-7000-8000-000000000004';

// short: a unix socket path has 107 bytes
const stateDir = mkdtempSync(join(tmpdir(), 'nc-'));
const vms: ConsoleVms = {
  paths: (uuid) => vmPaths(stateDir, uuid),
  pid: async (uuid) => (uuid === RUNNING || uuid === NO_SOCKET ? 4242 : undefined),
  readSpec: async (uuid) => (uuid === UNKNOWN ? undefined : ({ uuid } as never)),
};
const vncClients: Socket[] = [];
let vnc: Server;
const agent = createAgentServer({
  secret: SECRET,
  log: pino({ level: 'silent' }),
  handlers: {},
  upgrade: consoleUpgrade({ hypervisor: vms, log: pino({ level: 'silent' }) }),
});
let baseUrl = '';

before(async () => {
  for (const uuid of [RUNNING, STOPPED, NO_SOCKET])
    mkdirSync(vmPaths(stateDir, uuid).dir, { recursive: true });
  writeFileSync(vmPaths(stateDir, NO_SOCKET).spec, '{}');
  vnc = createServer((s) => {
    vncClients.push(s);
    s.write('RFB 003.008\n');
    s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => vnc.listen(vmPaths(stateDir, RUNNING).vnc, r));
  await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(agent.address() as AddressInfo).port}`;
});
after(() => {
  agent.close();
  vnc.close();
  rmSync(stateDir, { recursive: true, force: true });
});

function read(socket: Socket, bytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= bytes) {
        socket.off('data', onData);
        resolve(got.toString('latin1'));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

const refusal = (uuid: string, secret = SECRET) =>
  openAgentConsole({ baseUrl, secret }, uuid, { requestId: 'test-1' }).then(
    (s) => {
      s.destroy();
      assert.fail('the tunnel opened');
    },
    (err: CloudError) => err,
  );

test('a running VM: 101, then the VNC bytes both ways; closing the tunnel closes the VNC side', async () => {
  const socket = await openAgentConsole({ baseUrl, secret: SECRET }, RUNNING, { requestId: 'test-2' });
  assert.equal(await read(socket, 12), 'RFB 003.008\n');
  socket.write('RFB 003.008\n');
  assert.equal(await read(socket, 17), 'echo:RFB 003.008\n');
  const vncSide = vncClients.at(-1)!;
  const closed = new Promise((r) => vncSide.once('close', r));
  socket.destroy();
  await closed;
});

test('the VNC side closing (QEMU gone) closes the tunnel', async () => {
  const socket = await openAgentConsole({ baseUrl, secret: SECRET }, RUNNING, { requestId: 'test-3' });
  await read(socket, 12);
  const closed = new Promise((r) => socket.once('close', r));
  vncClients.at(-1)!.destroy();
  await closed;
});

test('refusals are the agent error shape, mapped by the client: wrong secret, unknown, stopped, no socket', async () => {
  assert.equal((await refusal(RUNNING, 'not-the-secret')).code, 'HOST_AGENT_SECRET_REJECTED');
  const unknown = await refusal(UNKNOWN);
  assert.equal(unknown.code, 'AGENT_VM_NOT_FOUND');
  assert.equal(unknown.reason, 'NotFound');
  const stopped = await refusal(STOPPED);
  assert.equal(stopped.code, 'AGENT_VM_NOT_RUNNING');
  assert.equal(stopped.reason, 'Conflict');
  const noSocket = await refusal(NO_SOCKET);
  assert.equal(noSocket.code, 'AGENT_VM_CONSOLE_UNAVAILABLE');
  assert.match(noSocket.message, /ENOENT/);
  assert.equal((await refusal('not-a-uuid!')).code, 'AGENT_VM_UUID_INVALID');
});

test('an unreachable agent is HOST_UNREACHABLE', async () => {
  const err = await openAgentConsole({ baseUrl: 'http://127.0.0.1:1', secret: SECRET }, RUNNING, {
    requestId: 'test-4',
  }).then(
    () => assert.fail('opened'),
    (e: CloudError) => e,
  );
  assert.equal(err.code, 'HOST_UNREACHABLE');
});

test('an upgrade with another protocol or method is refused by name', async () => {
  const res = await fetch(`${baseUrl}/v1/vms/${RUNNING}/console`, {
    headers: { authorization: `Bearer ${SECRET}` },
  });
  // a plain GET (no upgrade) is not a command: the ordinary router refuses it
  assert.equal(res.status, 404);
  const { request } = await import('node:http');
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${baseUrl}/v1/vms/${RUNNING}/console`, {
      headers: { authorization: `Bearer ${SECRET}`, connection: 'Upgrade', upgrade: 'websocket' },
    });
    req.on('response', (r) => {
      let body = '';
      r.on('data', (d) => {
        body += d;
      });
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('error', reject);
    req.end();
  });
  assert.equal(answer.status, 400);
  assert.equal(JSON.parse(answer.body).error.code, 'AGENT_UPGRADE_INVALID');
});
