/**
 * Real: security groups on a host bridge. Guests are namespaces plugged in under their TAP names,
 * a "probe" namespace on the bridge's uplink plays the outside. Skips (printing why) without
 * root or the tools.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { SgNic, SgRule } from '../../contract/agent.js';
import { Lab, leftovers, sh, skipReason, trySh } from './testing/harness.js';

const skip = skipReason();

const rule = (r: Partial<SgRule> & Pick<SgRule, 'direction' | 'protocol'>): SgRule => ({
  ruleUuid: randomUUID(),
  portStart: null,
  portEnd: null,
  ipVersion: 4,
  remoteCidrs: null,
  ...r,
});

test('security groups: default deny, rules as accepts, stateful, anti-spoofing, DHCP always', {
  skip,
}, async (t) => {
  const lab = new Lab();
  t.after(() => lab.destroy());
  const h = lab.ns('h');
  const probe = lab.ns('p');
  lab.wire(h, 'up0', '', probe, 'eth0', '10.61.0.100/24');
  const a = lab.agent(h);
  const br = 'br_up0';
  const l3 = randomUUID();
  await a.send('network.ensure-bridges', {
    version: 1,
    bridges: [
      {
        l2NetworkUuid: randomUUID(),
        type: 'no-vlan',
        bridgeName: br,
        physicalInterface: 'up0',
        vlan: null,
        vni: null,
        mtu: 1500,
      },
    ],
  });
  const g1 = lab.guest(a, 'g1', br);
  const g2 = lab.guest(a, 'g2', br);
  const entry = (g: typeof g1, ip: string) => ({
    nicUuid: g.nicUuid,
    mac: g.mac,
    ip,
    hostname: g.ns,
    gateway: null,
    isDefault: true,
  });
  await a.send('dhcp.set-entries', {
    version: 1,
    networks: [
      {
        l3NetworkUuid: l3,
        bridgeName: br,
        prefixLength: 24,
        gateway: null,
        dns: [],
        domainName: null,
        mtu: 1500,
        hostRoutes: [],
        entries: [entry(g1, '10.61.0.11'), entry(g2, '10.61.0.12')],
        serverIp: '10.61.0.250',
      },
    ],
  });
  lab.httpd(g1.ns, 8080);
  const nic = (g: typeof g1, ip: string, rules: SgRule[], groups = ['sg-a']): SgNic => ({
    nicUuid: g.nicUuid,
    mac: g.mac,
    ip,
    securityGroupUuids: groups,
    rules,
  });
  let version = 1;
  const apply = async (nics: SgNic[]) => {
    version += 1;
    assert.deepEqual(await a.send('sg.apply', { version, nics }), { applied: true });
  };
  const probeReachesG1 = () => lab.fetchWho(probe, '10.61.0.11', 8080) !== undefined;

  await t.test('unfiltered before any group; DHCP passes a default-deny NIC', async () => {
    assert.equal(lab.dhcp(g1)?.ip, '10.61.0.11');
    assert.equal(lab.dhcp(g2)?.ip, '10.61.0.12');
    assert.equal(lab.fetchWho(probe, '10.61.0.11', 8080), '10.61.0.100');
    await apply([
      nic(g1, '10.61.0.11', []),
      nic(g2, '10.61.0.12', [rule({ direction: 'egress', protocol: 'all' })]),
    ]);
    sh('ip', ['-n', g1.ns, 'addr', 'flush', 'dev', 'eth0']);
    assert.equal(lab.dhcp(g1)?.ip, '10.61.0.11', 'DHCP still works under default deny');
  });

  await t.test(
    'a TCP port is dropped by default, allowed by a rule, dropped again when the rule goes',
    async () => {
      assert.ok(!probeReachesG1(), 'default deny ingress');
      assert.ok(!lab.ping(g1.ns, '10.61.0.100'), 'default deny egress');
      const allow = rule({
        direction: 'ingress',
        protocol: 'tcp',
        portStart: 8080,
        portEnd: 8080,
        remoteCidrs: ['10.61.0.100/32'],
      });
      const v6 = rule({
        direction: 'ingress',
        protocol: 'tcp',
        portStart: 8080,
        portEnd: 8081,
        ipVersion: 6,
        remoteCidrs: ['::/0'],
      });
      await apply([
        nic(g1, '10.61.0.11', [allow, v6]),
        nic(g2, '10.61.0.12', [rule({ direction: 'egress', protocol: 'all' })]),
      ]);
      assert.equal(
        lab.fetchWho(probe, '10.61.0.11', 8080),
        '10.61.0.100',
        'allowed, and the reply passes (stateful)',
      );
      assert.ok(!lab.ping(g1.ns, '10.61.0.100'), 'egress still denied');
      assert.equal(lab.fetchWho(g2.ns, '10.61.0.11', 8080), undefined, 'another source is not in the rule');
      await apply([
        nic(g1, '10.61.0.11', [v6]),
        nic(g2, '10.61.0.12', [rule({ direction: 'egress', protocol: 'all' })]),
      ]);
      assert.ok(!probeReachesG1(), 'dropped again');
    },
  );

  await t.test('VM to VM on one host passes the sender egress and the receiver ingress', async () => {
    const fromG2 = rule({
      direction: 'ingress',
      protocol: 'tcp',
      portStart: 8000,
      portEnd: 8100,
      remoteCidrs: ['10.61.0.12'],
    });
    await apply([
      nic(g1, '10.61.0.11', [fromG2]),
      nic(g2, '10.61.0.12', [rule({ direction: 'egress', protocol: 'all' })]),
    ]);
    assert.equal(lab.fetchWho(g2.ns, '10.61.0.11', 8080), '10.61.0.12');
    await apply([
      nic(g1, '10.61.0.11', [fromG2]),
      nic(g2, '10.61.0.12', [rule({ direction: 'egress', protocol: 'udp' })]),
    ]);
    assert.equal(
      lab.fetchWho(g2.ns, '10.61.0.11', 8080),
      undefined,
      "the sender's egress now allows only UDP",
    );
  });

  await t.test('egress rules, and a spoofed source address is dropped', async () => {
    await apply([nic(g1, '10.61.0.11', [rule({ direction: 'egress', protocol: 'icmp' })])]);
    assert.ok(lab.ping(g1.ns, '10.61.0.100'), 'egress ICMP allowed');
    sh('ip', ['-n', g1.ns, 'addr', 'add', '10.61.0.99/24', 'dev', 'eth0']);
    assert.ok(
      !trySh('ip', [
        'netns',
        'exec',
        g1.ns,
        'busybox',
        'ping',
        '-c',
        '1',
        '-W',
        '2',
        '-I',
        '10.61.0.99',
        '10.61.0.100',
      ]).ok,
    );
    sh('ip', ['-n', g1.ns, 'addr', 'del', '10.61.0.99/24', 'dev', 'eth0']);
  });

  await t.test(
    'IPv6: neighbour discovery passes default deny, a v6 rule opens a port to v6 only',
    async () => {
      sh('ip', ['-n', g1.ns, 'addr', 'add', 'fd00:61::11/64', 'dev', 'eth0', 'nodad']);
      sh('ip', ['-n', probe, 'addr', 'add', 'fd00:61::100/64', 'dev', 'eth0', 'nodad']);
      lab.httpd(g1.ns, 8081, true);
      const v6 = rule({
        direction: 'ingress',
        protocol: 'tcp',
        portStart: 8081,
        portEnd: 8081,
        ipVersion: 6,
        remoteCidrs: ['fd00:61::100/128'],
      });
      await apply([nic(g1, '10.61.0.11', [v6])]);
      assert.equal(lab.fetchWho(probe, 'fd00:61::11', 8081), 'fd00:61::100');
      assert.equal(lab.fetchWho(probe, '10.61.0.11', 8081), undefined, 'the v6 rule does not open IPv4');
      await apply([nic(g1, '10.61.0.11', [])]);
      assert.equal(lab.fetchWho(probe, 'fd00:61::11', 8081), undefined);
    },
  );

  await t.test('NICs not listed lose their rules; stale versions are refused', async () => {
    assert.deepEqual(await a.send('sg.apply', { version, nics: [] }), { applied: false });
    assert.ok(!probeReachesG1());
    await apply([]);
    assert.ok(probeReachesG1());
    await assert.rejects(a.send('sg.apply', { version: version + 1, nics: [nic(g1, 'nope', [])] }), {
      code: 'HOST_SG_SPEC_INVALID',
    });
  });

  await t.test('cleanupAll leaves nothing', async () => {
    await apply([nic(g1, '10.61.0.11', [])]);
    await a.cleanupAll();
    assert.deepEqual(leftovers(a, [br]), []);
  });
});
