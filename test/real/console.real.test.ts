/**
 * The VM console end to end on a real host (issue 9): one "hypervisor host" (a network namespace
 * running the real nimbus-agent), a real QEMU guest, and the management node of this process.
 * Through the public API only: the console action gives a WebSocket URL; a WebSocket client on
 * it receives QEMU's RFB greeting through the node and the agent's tunnel, completes the version
 * handshake and reads the security types; the token cannot be used twice; stopping the VM closes
 * the console. Run with `npm run test:real -- console` (root, QEMU installed). One guest.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { cliRunner } from '../support/cli.js';
import { ADMIN_PASSWORD, startTestNode, type TestNode } from '../support/node.js';
import { addHost, buildCloud, type Cloud, guestImageUrl, ok, vmOf } from './support/cloud.js';
import { KvmLab, type LabHost, skipReason, waitFor } from './support/kvm-lab.js';

const skip = skipReason();

/** Bytes of a WebSocket's binary messages, read as they come. */
class Reader {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed: { code: number; reason: string } | undefined;

  constructor(ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      assert.ok(isBinary, 'the console sends binary frames');
      this.buffer = Buffer.concat([this.buffer, data]);
      this.wake?.();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.wake?.();
    });
  }

  async read(n: number, timeoutMs = 30_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < n) {
      if (this.closed)
        throw new Error(
          `closed (${this.closed.code} ${this.closed.reason}) after ${this.buffer.length} bytes`,
        );
      if (Date.now() > deadline)
        throw new Error(`only ${this.buffer.length} of ${n} bytes in ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }
}

/**
 * Opens a console WebSocket, its reader listening from the start: the greeting may come in the
 * same packet as the handshake's answer, and its message is emitted before an awaiting caller runs.
 */
function open(url: string, protocols: string[] = []): Promise<{ ws: WebSocket; rx: Reader }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    const rx = new Reader(ws);
    ws.once('open', () => resolve({ ws, rx }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${text}`)));
    });
    ws.once('error', reject);
  });
}

describe('the VM console over a real agent', { skip }, () => {
  let lab: LabHost['lab'];
  let host: LabHost;
  let t: TestNode;
  let cloud: Cloud;
  let vm = '';
  let closeImage: () => void = () => {};

  before(async () => {
    lab = new KvmLab();
    host = lab.addHost();
    await host.startAgent();
    t = await startTestNode();
    const image = await guestImageUrl(lab);
    closeImage = () => image.server.close();
    cloud = await buildCloud(t, lab, image.url);
    const added = await addHost(t, cloud, host, lab.secret);
    assert.equal(added.state, 'Succeeded', JSON.stringify(added.error));
    // no NIC: the console needs none
    const job = await ok(t.admin, 'POST', '/v1/vms', {
      name: `con-${lab.tag}`,
      imageUuid: cloud.image,
      instanceOfferingUuid: cloud.offering,
      hostUuid: cloud.hosts.get(host),
    });
    vm = job.resourceUuid;
    assert.equal((await vmOf(t.admin, vm)).state, 'Running');
  });

  after(async () => {
    closeImage();
    await t?.stop().catch(() => {});
    await lab?.destroy();
  });

  test('the WebSocket of the console action carries QEMU RFB: greeting, version handshake, security types', async () => {
    const res = await t.admin.post(`/v1/vms/${vm}/actions/console`, {});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const { url, token, expiresAt, protocol } = res.body;
    assert.equal(protocol, 'vnc');
    assert.equal(url, `${t.url.replace(/^http:/, 'ws:')}/v1/console?token=${encodeURIComponent(token)}`);
    const ttl = Date.parse(expiresAt) - Date.now();
    assert.ok(ttl > 0 && ttl <= 60_000, `expires within a minute (${ttl} ms)`);

    const { ws, rx } = await open(url);
    assert.equal((await rx.read(12)).toString('latin1'), 'RFB 003.008\n');
    ws.send(Buffer.from('RFB 003.008\n'));
    const count = (await rx.read(1))[0]!;
    assert.ok(count >= 1, `the server offers security types (it sent ${count})`);
    const types = [...(await rx.read(count))];
    assert.ok(types.includes(1), `security type None (1) is offered: ${types.join(',')}`);
    ws.close();
    await new Promise((r) => ws.once('close', r));

    // the same token again: spent
    const again = await open(url).then(
      ({ ws: w }) => {
        w.terminate();
        return 'opened';
      },
      (err: Error) => err.message,
    );
    assert.match(again, /HTTP 401: .*CONSOLE_TOKEN_USED/);
    // the closed console gave back its load-shedding slot: only this /metrics request is in flight
    await waitFor(
      'the console slot released',
      async () => {
        const text = await (await fetch(`${t.url}/metrics`)).text();
        return /nimbus_http_requests_in_flight\{class="exempt"\} 1\n/.test(text) ? true : undefined;
      },
      10_000,
    );
    const log = readFileSync(host.logFile, 'utf8');
    assert.match(log, /"msg":"console opened"/);
    assert.match(log, /"msg":"console closed"/);
  });

  test('behind a TLS proxy the URL is wss:, and the CLI prints URL and token', async () => {
    const res = await t.admin.call(
      'POST',
      `/v1/vms/${vm}/actions/console`,
      {},
      { 'x-forwarded-proto': 'https' },
    );
    assert.match(res.body.url, /^wss:\/\//);
    const cli = cliRunner();
    const login = await cli.run([
      'login',
      '--url',
      t.url,
      '--account',
      'admin',
      '--password',
      ADMIN_PASSWORD,
    ]);
    assert.equal(login.code, 0, login.stderr);
    const shown = await cli.run(['vm', 'console', `con-${lab.tag}`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^url: +ws:\/\/\S+\/v1\/console\?token=\S+$/m);
    assert.match(shown.stdout, /^token: +v1\.\S+$/m);
    assert.match(shown.stdout, /^protocol: +vnc$/m);
  });

  test('stopping the VM closes an open console; a stopped VM has none', async () => {
    const { url } = (await t.admin.post(`/v1/vms/${vm}/actions/console`, {})).body;
    // as older noVNC clients open it
    const { ws, rx } = await open(url, ['binary']);
    assert.equal(ws.protocol, 'binary');
    await rx.read(12);
    await ok(t.admin, 'POST', `/v1/vms/${vm}/actions/stop`, { force: true });
    await rx.read(1, 30_000).catch(() => undefined);
    assert.equal(rx.closed?.code, 1000, `closed: ${JSON.stringify(rx.closed)}`);
    const res = await t.admin.post(`/v1/vms/${vm}/actions/console`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_INVALID_STATE');
  });
});
