/**
 * Real, through nimbus-agent itself (dist/nimbus-agent.mjs, started inside a host namespace with
 * `nsenter --net`, as a test host runs it): the network commands over HTTP, a refusal's error
 * shape, versions kept across an agent restart, and a host left with nothing of the agent once
 * the management side sends empty sets. Skips (printing why) without root, the tools or the bundle.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BridgeSpec, DhcpNetwork } from '../../contract/agent.js';
import { namesFor } from './names.js';
import { Lab, leftovers, TestAgent } from './testing/harness.js';
import { bundleSkipReason, HttpAgent } from './testing/http-agent.js';

const skip = bundleSkipReason();

test('nimbus-agent answers the network commands over HTTP', { skip }, async (t) => {
  const lab = new Lab();
  const h = lab.ns('h');
  lab.wire(h, 'u0', '10.250.5.1/24', lab.ns('u'), 'u1', '10.250.5.2/24');
  const prefix = `h${randomBytes(2).toString('hex')}`;
  const agent = new HttpAgent(h, lab.dir, prefix);
  // the lab's own runner is only used for the final cleanup, with the same prefix and state
  const sweeper = () => new TestAgent(h, { namePrefix: prefix, stateDir: join(lab.dir, 'state') });
  t.after(async () => {
    await agent.stop();
    lab.agents.push(sweeper());
    await lab.destroy();
  });
  await agent.start();
  const vni = 3000 + Math.floor(Math.random() * 60000);
  const br = `br_vx_${vni}`;
  const bridge: BridgeSpec = {
    l2NetworkUuid: randomUUID(),
    type: 'vxlan',
    bridgeName: br,
    physicalInterface: null,
    vlan: null,
    vni,
    mtu: 1450,
    peers: ['10.250.5.2'],
  };
  let r = agent.send('network.ensure-bridges', { version: 7, bridges: [bridge] });
  assert.deepEqual(r, { status: 200, body: { applied: true } });
  const host = { hostNs: h, names: namesFor(prefix) };
  const guest = lab.guest(host, 'g', br);
  const l3 = randomUUID();
  const network: DhcpNetwork = {
    l3NetworkUuid: l3,
    bridgeName: br,
    prefixLength: 24,
    gateway: '10.78.0.1',
    dns: [],
    domainName: null,
    mtu: 1450,
    hostRoutes: [],
    entries: [
      {
        nicUuid: guest.nicUuid,
        mac: guest.mac,
        ip: '10.78.0.9',
        hostname: 'g',
        gateway: '10.78.0.1',
        isDefault: true,
      },
    ],
    serverIp: '10.78.0.2',
  };
  assert.deepEqual(agent.send('dhcp.set-entries', { version: 7, networks: [network] }).body, {
    applied: true,
  });
  const lease = lab.dhcp(guest);
  assert.equal(lease?.ip, '10.78.0.9');
  assert.equal(lease?.serverid, '10.78.0.2');

  r = agent.send('network.ensure-bridges', {
    version: 8,
    bridges: [
      { ...bridge, type: 'vlan', bridgeName: 'br_u0_9', physicalInterface: 'u0', vlan: 9, vni: null },
    ],
  });
  if (r.status !== 200) {
    assert.equal(r.status, 503);
    assert.equal(r.body.error?.code, 'HOST_VLAN_UNSUPPORTED');
  }
  assert.deepEqual(agent.send('router.status', { routerUuid: randomUUID() }).body, { version: 0 });

  await agent.stop();
  await agent.start();
  assert.deepEqual(agent.send('dhcp.set-entries', { version: 7, networks: [] }).body, { applied: false });
  assert.equal(lab.dhcp(guest)?.ip, '10.78.0.9', 'the restarted agent left the DHCP server running');

  assert.deepEqual(agent.send('dhcp.set-entries', { version: 9, networks: [] }).body, { applied: true });
  assert.deepEqual(agent.send('sg.apply', { version: 9, nics: [] }).body, { applied: true });
  assert.deepEqual(agent.send('network.ensure-bridges', { version: 9, bridges: [] }).body, { applied: true });
  const left = leftovers(host, [br, 'br_u0_9']).filter((l) => !l.includes(guest.tap));
  assert.deepEqual(
    left,
    [],
    'empty sets leave nothing of the agent but the guest port (a TAP in the QEMU part)',
  );
});
