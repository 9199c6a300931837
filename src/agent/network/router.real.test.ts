/**
 * Real: a virtual router as a namespace on a host: a guest L2 (VXLAN bridge), a public L2
 * (bridge on an uplink into a "public" namespace playing the outside world, with a server that
 * answers with the client address it sees), guests as namespaces getting their address from the
 * router's dnsmasq. Skips (printing why) without root or the tools.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { RouterConfig } from '../../contract/agent.js';
import { Lab, leftovers, skipReason } from './testing/harness.js';

const skip = skipReason();

test('virtual router: DHCP, SNAT, EIP, port forwarding, versions, cleanup', { skip }, async (t) => {
  const lab = new Lab();
  t.after(() => lab.destroy());
  const h = lab.ns('h');
  const pub = lab.ns('pub');
  lab.wire(h, 'up0', '', pub, 'eth0', '192.168.77.1/24');
  lab.wire(h, 'u0', '10.250.9.1/24', lab.ns('u'), 'u1', '10.250.9.2/24');
  const a = lab.agent(h, '10.250.9.1');
  const vni = 3000 + Math.floor(Math.random() * 60000);
  const guestBr = `br_vx_${vni}`;
  await a.send('network.ensure-bridges', {
    version: 1,
    bridges: [
      {
        l2NetworkUuid: randomUUID(),
        type: 'no-vlan',
        bridgeName: 'br_up0',
        physicalInterface: 'up0',
        vlan: null,
        vni: null,
        mtu: 1500,
      },
      {
        l2NetworkUuid: randomUUID(),
        type: 'vxlan',
        bridgeName: guestBr,
        physicalInterface: null,
        vlan: null,
        vni,
        mtu: 1450,
        peers: [],
      },
    ],
  });
  const g1 = lab.guest(a, 'g1', guestBr);
  const g2 = lab.guest(a, 'g2', guestBr);
  lab.httpd(g1.ns, 80);
  lab.httpd(g2.ns, 80);
  lab.httpd(g2.ns, 81);
  lab.httpd(pub, 9000);
  const routerUuid = randomUUID();
  const entry = (g: typeof g1, ip: string) => ({
    nicUuid: g.nicUuid,
    mac: g.mac,
    ip,
    hostname: g.ns,
    gateway: '10.62.0.1',
    isDefault: true,
  });
  const pf = (
    publicIp: string,
    pub0: number,
    pub1: number,
    priv0: number,
    allowedCidr: string | null = null,
  ) => ({
    ruleUuid: randomUUID(),
    protocol: 'tcp' as const,
    publicIp,
    publicPortStart: pub0,
    publicPortEnd: pub1,
    guestIp: '10.62.0.12',
    privatePortStart: priv0,
    privatePortEnd: priv0 + (pub1 - pub0),
    allowedCidr,
  });
  const config: RouterConfig = {
    routerUuid,
    guest: { l3NetworkUuid: randomUUID(), ip: '10.62.0.1', prefixLength: 24, mtu: 1450, bridgeName: guestBr },
    public: { ip: '192.168.77.10', prefixLength: 24, gateway: '192.168.77.1', bridgeName: 'br_up0' },
    dns: ['192.168.77.1'],
    domainName: 'vr.test',
    dhcp: [entry(g1, '10.62.0.11'), entry(g2, '10.62.0.12')],
    snat: { publicIp: '192.168.77.10', guestCidr: '10.62.0.0/24' },
    eips: [{ eipUuid: randomUUID(), publicIp: '192.168.77.20', guestIp: '10.62.0.11' }],
    portForwardings: [
      pf('192.168.77.30', 8080, 8080, 80),
      pf('192.168.77.30', 9000, 9001, 80),
      pf('192.168.77.31', 80, 80, 80, '192.168.99.0/24'),
    ],
  };

  await t.test('the router answers DHCP for its guest network with itself as the gateway', async () => {
    assert.equal((await a.send<{ version: number }>('router.status', { routerUuid })).version, 0);
    assert.deepEqual(await a.send('router.apply-config', { version: 5, config }), { applied: true });
    const l1 = lab.dhcp(g1);
    assert.equal(l1?.ip, '10.62.0.11');
    assert.equal(l1?.router, '10.62.0.1');
    assert.equal(l1?.dns, '192.168.77.1');
    assert.equal(lab.dhcp(g2)?.ip, '10.62.0.12');
  });

  await t.test('EIP: the outside reaches the guest at the public address, the guest goes out as it', () => {
    assert.equal(lab.fetchWho(pub, '192.168.77.20', 80), '192.168.77.1', 'DNAT keeps the client address');
    assert.equal(lab.fetchWho(g1.ns, '192.168.77.1', 9000), '192.168.77.20');
  });

  await t.test('SNAT: a guest without EIP reaches the outside as the router public address', () => {
    assert.equal(lab.fetchWho(g2.ns, '192.168.77.1', 9000), '192.168.77.10');
  });

  await t.test('port forwarding: single port, shifted range, allowedCidr', () => {
    assert.equal(lab.servedPort(pub, '192.168.77.30', 8080), 80);
    assert.equal(lab.fetchWho(pub, '192.168.77.30', 8080), '192.168.77.1');
    assert.equal(lab.servedPort(pub, '192.168.77.30', 9000), 80);
    assert.equal(lab.servedPort(pub, '192.168.77.30', 9001), 81);
    assert.equal(lab.servedPort(pub, '192.168.77.31', 80), undefined, 'the outside is not in allowedCidr');
  });

  await t.test('stale versions are refused; a newer config replaces the whole NAT', async () => {
    for (const version of [5, 4]) {
      assert.deepEqual(await a.send('router.apply-config', { version, config: { ...config, eips: [] } }), {
        applied: false,
      });
    }
    assert.equal(lab.fetchWho(pub, '192.168.77.20', 80), '192.168.77.1', 'the stale config changed nothing');
    assert.deepEqual(await a.send('router.apply-config', { version: 6, config: { ...config, eips: [] } }), {
      applied: true,
    });
    assert.equal((await a.send<{ version: number }>('router.status', { routerUuid })).version, 6);
    assert.equal(lab.fetchWho(pub, '192.168.77.20', 80), undefined, 'the EIP is gone');
    assert.equal(
      lab.fetchWho(g1.ns, '192.168.77.1', 9000),
      '192.168.77.10',
      'g1 now leaves through the SNAT',
    );
    await assert.rejects(
      a.send('router.apply-config', {
        version: 7,
        config: { ...config, guest: { ...config.guest, bridgeName: undefined } },
      }),
      { code: 'HOST_ROUTER_CONFIG_INVALID' },
    );
  });

  await t.test('cleanupAll removes the router: status 0, nothing left', async () => {
    await a.cleanupAll();
    assert.equal((await a.send<{ version: number }>('router.status', { routerUuid })).version, 0);
    assert.deepEqual(leftovers(a, ['br_up0', guestBr]), []);
  });
});
