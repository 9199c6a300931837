/**
 * The VM console page end to end in Chromium (see browser.ts): the page asks the node for a
 * console (the real action and token), noVNC opens the node's WebSocket (`/v1/console`), the node
 * opens the agent's console tunnel and relays. The host is a kvm host whose agent is scripted
 * here (rows inserted for it and its VM: a simulated host has no VNC): it answers the tunnel's
 * upgrade and then speaks RFB 3.8 as a VM's VNC would (no authentication, a 64×48 screen, one red
 * frame). The page must connect under its Content-Security-Policy and draw the frame: the
 * screen's pixels turn red. (The relay to a real QEMU: test/real/console.real.test.ts.)
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Page } from 'playwright-core';
import { AGENT_CONSOLE_PATH, AGENT_CONSOLE_UPGRADE } from '../../src/contract/console.js';
import { newId } from '../../src/kernel/ids.js';
import { ADMIN_PASSWORD } from '../support/node.js';
import { type ConsoleRig, eventually, logIn, missingBrowser, startConsoleRig } from './browser.js';

if (missingBrowser) console.log(`# skipping the browser tests: ${missingBrowser}`);

const W = 64;
const H = 48;

/** The server side of RFB 3.8 on a socket, just enough for a client to connect and draw one frame. */
function scriptedVnc(socket: Socket, seen: string[]): void {
  let stage = 0;
  let pending = Buffer.alloc(0);
  const send = (b: Buffer) => socket.write(b);
  send(Buffer.from('RFB 003.008\n'));
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (stage === 0 && pending.length >= 12) {
        seen.push(`version ${pending.subarray(0, 11).toString()}`);
        pending = pending.subarray(12);
        send(Buffer.from([1, 1])); // one security type: None
        stage = 1;
      } else if (stage === 1 && pending.length >= 1) {
        seen.push(`security ${pending[0]}`);
        pending = pending.subarray(1);
        send(Buffer.from([0, 0, 0, 0])); // SecurityResult: OK
        stage = 2;
      } else if (stage === 2 && pending.length >= 1) {
        seen.push('client-init');
        pending = pending.subarray(1);
        const name = Buffer.from('nimbus-test');
        const init = Buffer.alloc(24);
        init.writeUInt16BE(W, 0);
        init.writeUInt16BE(H, 2);
        // pixel format: 32 bpp, depth 24, little-endian, true colour, 255 max, shifts 16/8/0
        Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(init, 4);
        init.writeUInt32BE(name.length, 20);
        send(Buffer.concat([init, name]));
        stage = 3;
      } else if (stage === 3 && pending.length > 0) {
        // the client's SetPixelFormat / SetEncodings / FramebufferUpdateRequest: answer the
        // first update request (type 3) with one raw frame, red in the client's own format
        // (noVNC asks for 32 bpp little-endian with red at shift 0: bytes R, G, B, 0)
        if (pending.includes(3)) {
          seen.push('update-request');
          const header = Buffer.alloc(16);
          header.writeUInt8(0, 0); // FramebufferUpdate
          header.writeUInt16BE(1, 2); // one rectangle
          header.writeUInt16BE(W, 8);
          header.writeUInt16BE(H, 10);
          header.writeInt32BE(0, 12); // raw encoding
          const pixels = Buffer.alloc(W * H * 4);
          for (let i = 0; i < W * H; i++) pixels[i * 4] = 255;
          send(Buffer.concat([header, pixels]));
          stage = 4;
        }
        pending = Buffer.alloc(0);
        return;
      } else return;
    }
  });
}

describe('VM console page with noVNC, through the node, in Chromium', { skip: missingBrowser }, () => {
  let rig: ConsoleRig;
  let page: Page;
  let agent: Server;
  const seen: string[] = [];
  const tunnels: string[] = [];
  const SECRET = 'scripted-agent-secret';

  before(async () => {
    rig = await startConsoleRig('vnc');
    // the scripted agent: the console tunnel's upgrade, then RFB on the raw socket
    agent = createServer((_req, res) => res.writeHead(404).end());
    agent.on('upgrade', (req, socket: Socket) => {
      const vm = AGENT_CONSOLE_PATH.exec(req.url ?? '')?.[1];
      if (
        !vm ||
        req.headers.upgrade !== AGENT_CONSOLE_UPGRADE ||
        req.headers.authorization !== `Bearer ${SECRET}`
      ) {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      tunnels.push(vm);
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${AGENT_CONSOLE_UPGRADE}\r\n\r\n`,
      );
      scriptedVnc(socket, seen);
    });
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    page = await rig.newPage();
    await page.goto(`${rig.t.url}/login`);
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  });
  after(async () => {
    await rig?.stop();
    agent?.close();
  });

  test('the page gets a token, noVNC speaks RFB through the node’s relay to the agent, and the frame is drawn', async () => {
    // a kvm host whose agent is the scripted one, and a VM running on it
    const { db } = rig.t.db;
    const zone = await rig.byName('zones', 'zone-1');
    const cluster = await rig.byName('clusters', 'cluster-1');
    const admin = (await rig.t.admin.get('/v1/zones?q=name=zone-1')).body.items[0].accountUuid as string;
    const host = newId();
    const vm = newId();
    const port = (agent.address() as AddressInfo).port;
    await sql`insert into hosts (uuid, name, zone_uuid, cluster_uuid, hypervisor_type, management_ip, agent_port,
                status, cpu_total, memory_total, account_uuid)
              values (${host}, 'kvm-scripted', ${zone}, ${cluster}, 'kvm', '127.0.0.1', ${port}, 'Connected', 8,
                ${8 * 1024 ** 3}, ${admin})`.execute(db);
    await sql`insert into host_secrets (host_uuid, secret) values (${host}, ${SECRET})`.execute(db);
    await sql`insert into vms (uuid, name, account_uuid, zone_uuid, cluster_uuid, host_uuid, cpu, memory, state, power_state)
              values (${vm}, 'vnc-1', ${admin}, ${zone}, ${cluster}, ${host}, 1, ${1024 ** 3}, 'Running', 'Running')`.execute(
      db,
    );

    await page.goto(`${rig.t.url}/vms/${vm}`);
    await page.getByRole('group', { name: 'actions' }).getByRole('link', { name: 'console' }).click();
    await page.waitForURL(`${rig.t.url}/console/${vm}`);
    await eventually(async () =>
      assert.equal(
        await page.getByTestId('console-status').textContent(),
        'connected',
        `tunnels ${tunnels.join()}; the scripted VNC saw ${seen.join(', ')}`,
      ),
    );
    assert.deepEqual(tunnels, [vm]);
    // the frame reached the screen: the canvas noVNC draws into is red in its middle
    await eventually(async () => {
      const rgb = await page
        .getByTestId('console-screen')
        .locator('canvas')
        .evaluate((c) => {
          const canvas = c as unknown as {
            width: number;
            height: number;
            getContext(t: '2d'): {
              getImageData(x: number, y: number, w: number, h: number): { data: number[] };
            };
          };
          const d = canvas.getContext('2d').getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
          return [d[0], d[1], d[2]];
        });
      assert.deepEqual(rgb, [255, 0, 0]);
    });
    assert.deepEqual(seen, ['version RFB 003.008', 'security 1', 'client-init', 'update-request']);
    await rig.shot(page, 'vm-console-novnc');
    assert.deepEqual(rig.pageErrors, []);
  });
});
