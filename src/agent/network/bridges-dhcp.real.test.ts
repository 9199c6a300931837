/**
 * Real: two "hosts" (namespaces joined by a veth underlay), one agent network part in each, a
 * VXLAN L2 between them with unicast FDB peers, flat DHCP per host, guests as namespaces.
 * Skips (printing why) without root or the tools.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BridgeSpec, DhcpEntry, DhcpNetwork } from '../../contract/agent.js';
import { Lab, leftovers, sh, skipReason, TestAgent, trySh } from './testing/harness.js';

const skip = skipReason();

function fdbPeers(ns: string, dev: string): string[] {
  const out = sh('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', dev]);
  return (JSON.parse(out || '[]') as Array<{ mac: string; dst?: string }>)
    .filter((e) => e.mac === '00:00:00:00:00:00' && e.dst)
    .map((e) => e.dst as string)
    .sort();
}

function linkInfo(
  ns: string,
  name: string,
): { master?: string; mtu?: number; linkinfo?: { info_kind?: string } } | undefined {
  const r = trySh('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', name]);
  return r.ok ? (JSON.parse(r.out) as Array<{ master?: string; mtu?: number }>)[0] : undefined;
}

function pidOf(agent: TestAgent, l3: string): number {
  return Number(
    readFileSync(join(agent.opts.stateDir, 'dhcp', agent.names.dhcpNs(l3), 'dnsmasq.pid'), 'utf8').trim(),
  );
}

/** a live process, not a zombie: a stopped daemon stays a zombie until init reaps it */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

test('two hosts: VXLAN L2 with unicast peers, per-host DHCP, cleanup', { skip }, async (t) => {
  const lab = new Lab();
  t.after(() => lab.destroy());
  const h1 = lab.ns('h1');
  const h2 = lab.ns('h2');
  lab.wire(h1, 'eth0', '10.250.7.1/24', h2, 'eth0', '10.250.7.2/24');
  let a = lab.agent(h1, '10.250.7.1');
  let b = lab.agent(h2, '10.250.7.2');
  const vni = 3000 + Math.floor(Math.random() * 60000);
  const br = `br_vx_${vni}`;
  const l2 = randomUUID();
  const bridge = (peers: string[]): BridgeSpec => ({
    l2NetworkUuid: l2,
    type: 'vxlan',
    bridgeName: br,
    physicalInterface: null,
    vlan: null,
    vni,
    mtu: 1450,
    peers,
  });
  const l3 = randomUUID();
  const network = (entries: DhcpEntry[]): DhcpNetwork => ({
    l3NetworkUuid: l3,
    bridgeName: br,
    prefixLength: 24,
    gateway: '10.77.0.1',
    dns: ['10.77.0.53'],
    domainName: 'nimbus.test',
    mtu: 1450,
    hostRoutes: [{ destination: '10.99.0.0/16', nexthop: '10.77.0.2' }],
    entries,
  });
  const entry = (nicUuid: string, mac: string, ip: string, isDefault: boolean): DhcpEntry => ({
    nicUuid,
    mac,
    ip,
    hostname: `vm-${ip.split('.')[3]}`,
    gateway: isDefault ? '10.77.0.1' : null,
    isDefault,
  });

  await t.test(
    'ensure-bridges makes the bridge, the VXLAN device and FDB entries that follow peers exactly',
    async () => {
      assert.deepEqual(
        await a.send('network.ensure-bridges', {
          version: 10,
          bridges: [bridge(['10.250.7.2', '10.250.7.9'])],
        }),
        {
          applied: true,
        },
      );
      const vx = a.names.vxlan(vni);
      assert.equal(linkInfo(h1, vx)?.master, br);
      assert.equal(linkInfo(h1, br)?.mtu, 1450);
      assert.deepEqual(fdbPeers(h1, vx), ['10.250.7.2', '10.250.7.9']);
      assert.deepEqual(
        await a.send('network.ensure-bridges', { version: 11, bridges: [bridge(['10.250.7.2'])] }),
        {
          applied: true,
        },
      );
      assert.deepEqual(fdbPeers(h1, vx), ['10.250.7.2'], 'the stale peer is removed');
      const d = JSON.parse(sh('ip', ['-n', h1, '-j', '-d', 'link', 'show', 'dev', vx]))[0].linkinfo.info_data;
      assert.equal(d.id, vni);
      assert.equal(d.port, 4789);
      assert.equal(d.local, '10.250.7.1');
      assert.equal(d.learning, false);
      assert.deepEqual(
        await b.send('network.ensure-bridges', { version: 10, bridges: [bridge(['10.250.7.1'])] }),
        {
          applied: true,
        },
      );
    },
  );

  const ga = lab.guest(a, 'ga', br);
  const gb = lab.guest(b, 'gb', br);

  await t.test(
    'a guest gets exactly its entry from its own host; the other host never answers it',
    async () => {
      await a.send('dhcp.set-entries', {
        version: 10,
        networks: [network([entry(ga.nicUuid, ga.mac, '10.77.0.21', true)])],
      });
      await b.send('dhcp.set-entries', {
        version: 10,
        networks: [network([entry(gb.nicUuid, gb.mac, '10.77.0.22', false)])],
      });
      const la = lab.dhcp(ga);
      assert.ok(la, 'guest A got a lease');
      assert.equal(la.ip, '10.77.0.21');
      assert.equal(la.mask, '24');
      assert.equal(la.router, '10.77.0.1', 'the default NIC gets the gateway');
      assert.equal(la.dns, '10.77.0.53');
      assert.equal(la.domain, 'nimbus.test');
      assert.equal(la.mtu, '1450');
      assert.equal(la.serverid, '10.77.0.254', 'no serverIp: the last usable address of the subnet');
      assert.match(la.staticroutes ?? '', /10\.99\.0\.0\/16 10\.77\.0\.2/);
      assert.match(la.staticroutes ?? '', /0\.0\.0\.0\/0 10\.77\.0\.1/);
      const lb = lab.dhcp(gb);
      assert.ok(lb, 'guest B got a lease');
      assert.equal(lb.ip, '10.77.0.22');
      assert.equal(lb.router, '', 'a non-default NIC gets no router');
      // both hosts' servers hold 10.77.0.254: each is kept to its own host's TAPs
      const logA = readFileSync(join(a.opts.stateDir, 'dhcp', a.names.dhcpNs(l3), 'dnsmasq.log'), 'utf8');
      const logB = readFileSync(join(b.opts.stateDir, 'dhcp', b.names.dhcpNs(l3), 'dnsmasq.log'), 'utf8');
      assert.match(logA, new RegExp(`DHCPACK\\(dhcp0\\) 10.77.0.21 ${ga.mac}`));
      assert.ok(!logB.includes(ga.mac), "host B's server never saw guest A");
      assert.ok(!logA.includes(gb.mac), "host A's server never saw guest B");
      // a MAC nobody lists gets nothing (no dynamic range)
      const stranger = lab.guest(a, 'gx', br);
      assert.equal(lab.dhcp(stranger, 2), undefined);
    },
  );

  await t.test('guests on the two hosts reach each other across the VXLAN', () => {
    assert.ok(lab.ping(ga.ns, '10.77.0.22'), 'A → B');
    assert.ok(lab.ping(gb.ns, '10.77.0.21'), 'B → A');
  });

  await t.test('changed entries reload dnsmasq (SIGHUP, same PID); stale versions are refused', async () => {
    const pid = pidOf(a, l3);
    assert.deepEqual(
      await a.send('dhcp.set-entries', {
        version: 11,
        networks: [network([entry(ga.nicUuid, ga.mac, '10.77.0.31', true)])],
      }),
      { applied: true },
    );
    assert.equal(pidOf(a, l3), pid);
    await new Promise((r) => setTimeout(r, 300));
    const lease = lab.dhcp(ga);
    if (lease?.ip !== '10.77.0.31')
      console.log(readFileSync(join(a.opts.stateDir, 'dhcp', a.names.dhcpNs(l3), 'dnsmasq.log'), 'utf8'));
    assert.equal(lease?.ip, '10.77.0.31');
    for (const version of [11, 3]) {
      assert.deepEqual(await a.send('dhcp.set-entries', { version, networks: [] }), { applied: false });
    }
    assert.ok(alive(pid), 'a stale empty state did not stop the server');
    assert.deepEqual(await a.send('network.ensure-bridges', { version: 11, bridges: [] }), {
      applied: false,
    });
    assert.ok(linkInfo(h1, br), 'a stale empty bridge set removed nothing');
  });

  await t.test('a dead dnsmasq is started again by the next apply', async () => {
    const pid = pidOf(a, l3);
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await a.send('dhcp.set-entries', {
      version: 12,
      networks: [network([entry(ga.nicUuid, ga.mac, '10.77.0.31', true)])],
    });
    assert.notEqual(pidOf(a, l3), pid);
    assert.equal(lab.dhcp(ga)?.ip, '10.77.0.31');
  });

  await t.test('a restarted agent keeps its versions (state in stateDir)', async () => {
    await a.stop();
    const again = new TestAgent(h1, a.opts);
    lab.agents[lab.agents.indexOf(a)] = again;
    a = again;
    assert.deepEqual(await a.send('network.ensure-bridges', { version: 11, bridges: [] }), {
      applied: false,
    });
    assert.deepEqual(await a.send('dhcp.set-entries', { version: 12, networks: [] }), { applied: false });
  });

  await t.test('removing the sets removes the DHCP server and the bridge with its VXLAN device', async () => {
    const pid = pidOf(a, l3);
    assert.deepEqual(await a.send('dhcp.set-entries', { version: 13, networks: [] }), { applied: true });
    assert.ok(!alive(pid), 'dnsmasq stopped');
    assert.ok(!trySh('ip', ['netns', 'list']).out.includes(a.names.dhcpNs(l3)), 'namespace deleted');
    assert.deepEqual(await a.send('network.ensure-bridges', { version: 12, bridges: [] }), { applied: true });
    assert.equal(linkInfo(h1, br), undefined);
    assert.equal(linkInfo(h1, a.names.vxlan(vni)), undefined);
    assert.ok(linkInfo(h1, ga.tap), "the guest's port survives its bridge (the QEMU part owns TAPs)");
  });

  await t.test('the TAP plugger makes, re-attaches and removes a NIC TAP', async () => {
    const nic = {
      uuid: randomUUID(),
      mac: '52:54:00:12:34:56',
      l3NetworkUuid: l3,
      ip: '10.77.0.40',
      prefixLength: 24,
      gateway: '10.77.0.1',
      deviceId: 0,
      isDefault: true,
      bridgeName: br,
      mtu: 1400,
    };
    await assert.rejects(b.ensureTap({ ...nic, bridgeName: 'br_nope' }), { code: 'HOST_BRIDGE_MISSING' });
    const tap = await b.ensureTap(nic);
    assert.equal(tap, b.names.tap(nic.uuid));
    assert.ok(tap.length <= 15);
    const info = linkInfo(h2, tap);
    assert.equal(info?.linkinfo?.info_kind, 'tun');
    assert.equal(info?.master, br);
    assert.equal(info?.mtu, 1400);
    assert.equal(await b.ensureTap(nic), tap, 'idempotent');
    // the agent restarts, then the bridge goes and comes back: the TAP is put back into it
    await b.stop();
    const again = new TestAgent(h2, b.opts);
    lab.agents[lab.agents.indexOf(b)] = again;
    b = again;
    await b.send('network.ensure-bridges', { version: 11, bridges: [] });
    assert.equal(linkInfo(h2, tap)?.master, undefined);
    await b.send('network.ensure-bridges', { version: 12, bridges: [bridge(['10.250.7.1'])] });
    assert.equal(linkInfo(h2, tap)?.master, br);
    await b.removeTap(nic.uuid);
    assert.equal(linkInfo(h2, tap), undefined);
    await b.removeTap(nic.uuid);
  });

  await t.test('cleanupAll leaves nothing of either agent', async () => {
    await a.send('dhcp.set-entries', { version: 20, networks: [network([])] }).catch(() => undefined);
    await a.send('network.ensure-bridges', { version: 20, bridges: [bridge(['10.250.7.2'])] });
    await a.send('dhcp.set-entries', {
      version: 21,
      networks: [network([entry(ga.nicUuid, ga.mac, '10.77.0.21', true)])],
    });
    for (const agent of [a, b]) {
      await agent.cleanupAll();
      assert.deepEqual(leftovers(agent, [br]), []);
    }
  });
});

test('no-vlan bridge: the uplink is enslaved and its address moves to the bridge and back', {
  skip,
}, async (t) => {
  const lab = new Lab();
  t.after(() => lab.destroy());
  const h = lab.ns('h');
  const peer = lab.ns('p');
  lab.wire(h, 'up0', '10.251.3.1/24', peer, 'eth0', '10.251.3.2/24');
  const a = lab.agent(h);
  const spec: BridgeSpec = {
    l2NetworkUuid: randomUUID(),
    type: 'no-vlan',
    bridgeName: 'br_up0',
    physicalInterface: 'up0',
    vlan: null,
    vni: null,
    mtu: 1500,
  };
  await a.send('network.ensure-bridges', { version: 1, bridges: [spec] });
  assert.equal(linkInfo(h, 'up0')?.master, 'br_up0');
  assert.match(sh('ip', ['-n', h, 'addr', 'show', 'dev', 'br_up0']), /10\.251\.3\.1\/24/);
  assert.ok(lab.ping(h, '10.251.3.2'), 'the host still reaches its neighbour through the bridge');
  await assert.rejects(
    a.send('network.ensure-bridges', {
      version: 2,
      bridges: [{ ...spec, bridgeName: 'br_x', physicalInterface: 'nope0' }],
    }),
    { code: 'HOST_INTERFACE_MISSING' },
  );
  // the L2's bridge renamed: the interface and its address move to the new one in one apply
  await a.send('network.ensure-bridges', { version: 3, bridges: [{ ...spec, bridgeName: 'br_up0b' }] });
  assert.equal(linkInfo(h, 'up0')?.master, 'br_up0b');
  assert.equal(linkInfo(h, 'br_up0'), undefined);
  assert.match(sh('ip', ['-n', h, 'addr', 'show', 'dev', 'br_up0b']), /10\.251\.3\.1\/24/);
  assert.ok(lab.ping(h, '10.251.3.2'));
  await a.send('network.ensure-bridges', { version: 4, bridges: [] });
  assert.equal(linkInfo(h, 'br_up0b'), undefined);
  assert.equal(linkInfo(h, 'up0')?.master, undefined);
  assert.match(sh('ip', ['-n', h, 'addr', 'show', 'dev', 'up0']), /10\.251\.3\.1\/24/);
  assert.ok(lab.ping(h, '10.251.3.2'));
  await a.cleanupAll();
  assert.deepEqual(leftovers(a, ['br_up0', 'br_up0b', 'br_x']), []);
});

/** whether this kernel makes 802.1Q sub-interfaces */
function kernelHasVlan(lab: Lab): boolean {
  const ns = lab.ns('vl');
  sh('ip', ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  return trySh('ip', ['-n', ns, 'link', 'add', 'link', 'v0', 'name', 'v0.7', 'type', 'vlan', 'id', '7']).ok;
}

test('vlan bridges', { skip }, async (t) => {
  const lab = new Lab();
  t.after(() => lab.destroy());
  const hasVlan = kernelHasVlan(lab);
  const h = lab.ns('h');
  const peer = lab.ns('p');
  lab.wire(h, 'up0', '', peer, 'eth0', '');
  const a = lab.agent(h);
  const spec: BridgeSpec = {
    l2NetworkUuid: randomUUID(),
    type: 'vlan',
    bridgeName: 'br_up0_52',
    physicalInterface: 'up0',
    vlan: 52,
    vni: null,
    mtu: 1500,
  };
  await t.test(
    'are refused clearly on a kernel without 802.1Q',
    { skip: hasVlan ? 'this kernel has 802.1Q VLANs' : false },
    async () => {
      await assert.rejects(
        a.send('network.ensure-bridges', { version: 1, bridges: [spec] }),
        (err: Error & { code?: string; reason?: string }) => {
          assert.equal(err.code, 'HOST_VLAN_UNSUPPORTED');
          assert.equal(err.reason, 'Unavailable');
          assert.match(err.message, /CONFIG_VLAN_8021Q/);
          return true;
        },
      );
    },
  );
  await t.test(
    'enslave the sub-interface <if>.<vlan>',
    {
      skip: hasVlan ? false : 'this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q unset, no modules)',
    },
    async () => {
      await a.send('network.ensure-bridges', { version: 2, bridges: [spec] });
      assert.equal(linkInfo(h, 'up0.52')?.master, 'br_up0_52');
    },
  );
  await a.cleanupAll();
  assert.deepEqual(leftovers(a, ['br_up0_52', 'up0.52']), []);
});
