/** Pure parts of the network part: names, dnsmasq files, nft scripts (no root needed). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PartContext } from './context.js';
import { dnsmasqFiles } from './dnsmasq.js';
import { createNetworkPart } from './index.js';
import { namesFor, uuidTail } from './names.js';
import { natScript, validateRouter } from './router.js';
import { sgScript, validateSg } from './security-groups.js';

const ctx = { names: namesFor('ab12c') } as PartContext;

test('names: ≤ 15 characters, from the random tail of UUIDv7s, with the prefix', () => {
  const a = '0190f3a2-7b1c-7def-8123-4567890abcde';
  const b = '0190f3a2-7b1c-7def-8123-4567890abcdf';
  assert.equal(uuidTail(a, 10), '567890abcde'.slice(1));
  for (const n of [
    ctx.names.tap(a),
    ctx.names.dhcpVeth(a),
    ctx.names.routerGuestVeth(a),
    ctx.names.vxlan(16777215),
  ]) {
    assert.ok(n.length <= 15, n);
    assert.ok(n.startsWith('ab12c'), n);
    assert.ok(ctx.names.ownsLink(n), n);
  }
  assert.notEqual(ctx.names.tap(a), ctx.names.tap(b), 'neighbouring v7 UUIDs still differ');
  assert.ok(ctx.names.ownsNs(ctx.names.dhcpNs(a)) && ctx.names.ownsNs(ctx.names.routerNs(a)));
  assert.ok(!ctx.names.ownsLink('br_eth0'));
  assert.throws(() => namesFor('Bad-prefix'), { code: 'AGENT_NAME_PREFIX_INVALID' });
  assert.throws(() => namesFor('abcdef'), { code: 'AGENT_NAME_PREFIX_INVALID' });
});

test('dnsmasq files: static entries only, gateway only for default NICs, routes with the default in 121', () => {
  const f = dnsmasqFiles({
    ns: 'x',
    iface: 'dhcp0',
    dir: '/s',
    network: '10.1.0.0',
    prefixLength: 24,
    entries: [
      {
        nicUuid: 'n1',
        mac: 'FA:16:3E:00:00:01',
        ip: '10.1.0.5',
        hostname: 'Web_1',
        gateway: '10.1.0.1',
        isDefault: true,
      },
      {
        nicUuid: 'n2',
        mac: 'fa:16:3e:00:00:02',
        ip: '10.1.0.6',
        hostname: 'db',
        gateway: null,
        isDefault: false,
      },
    ],
    dns: ['10.1.0.53', '1.1.1.1'],
    domainName: 'example.test',
    mtu: 1450,
    hostRoutes: [{ destination: '10.9.0.0/16', nexthop: '10.1.0.9' }],
  });
  assert.match(f.conf, /^dhcp-range=10\.1\.0\.0,static,255\.255\.255\.0,3600$/m);
  assert.match(f.conf, /^no-ping$/m);
  assert.match(f.conf, /^dhcp-mac=set:gw0,fa:16:3e:00:00:01$/m);
  assert.doesNotMatch(f.conf, /00:00:02/);
  assert.equal(f.hosts, 'fa:16:3e:00:00:01,10.1.0.5,web-1\nfa:16:3e:00:00:02,10.1.0.6,db\n');
  assert.match(f.opts, /^tag:!hasgw,option:router$/m);
  assert.match(f.opts, /^tag:gw0,option:router,10\.1\.0\.1$/m);
  assert.match(
    f.opts,
    /^tag:gw0,option:classless-static-route,10\.9\.0\.0\/16,10\.1\.0\.9,0\.0\.0\.0\/0,10\.1\.0\.1$/m,
  );
  assert.match(f.opts, /^option:dns-server,10\.1\.0\.53,1\.1\.1\.1$/m);
  assert.match(f.opts, /^option:mtu,1450$/m);
});

test('security-group script: marks per NIC, stateful chains, rules per version; bad input refused', () => {
  const nic = '0190f3a2-7b1c-7def-8123-4567890abcde';
  const s = sgScript(ctx, [
    {
      nicUuid: nic,
      mac: 'fa:16:3e:00:00:01',
      ip: '10.1.0.5',
      securityGroupUuids: ['g'],
      rules: [
        {
          ruleUuid: 'r1',
          direction: 'ingress',
          protocol: 'tcp',
          portStart: 22,
          portEnd: 22,
          ipVersion: 4,
          remoteCidrs: ['10.0.0.0/8'],
        },
        {
          ruleUuid: 'r2',
          direction: 'ingress',
          protocol: 'udp',
          portStart: 53,
          portEnd: 60,
          ipVersion: 6,
          remoteCidrs: null,
        },
        {
          ruleUuid: 'r3',
          direction: 'egress',
          protocol: 'all',
          portStart: null,
          portEnd: null,
          ipVersion: 4,
          remoteCidrs: [],
        },
      ],
    },
    { nicUuid: 'unfiltered', mac: 'fa:16:3e:00:00:02', ip: null, securityGroupUuids: [], rules: [] },
  ]);
  const tap = ctx.names.tap(nic);
  assert.match(s, new RegExp(`iifname "${tap}" meta mark set meta mark and 0xffff0000 or 1`));
  assert.match(s, new RegExp(`iifname "${tap}" ip saddr != \\{ 0\\.0\\.0\\.0, 10\\.1\\.0\\.5 \\} drop`));
  assert.match(s, /ip saddr \{ 10\.0\.0\.0\/8 \} tcp dport 22 accept/);
  assert.match(s, /meta nfproto ipv6 udp dport 53-60 accept/);
  assert.doesNotMatch(s, /out_[0-9a-f]+ \{[^}]*ip daddr/, 'a remote group with no member allows nobody');
  assert.equal((s.match(/jump/g) ?? []).length, 2, 'the NIC in no group is not filtered');
  assert.throws(
    () =>
      validateSg([
        { nicUuid: 'n', mac: 'x', ip: '1.2.3.4"; flush ruleset', securityGroupUuids: [], rules: [] },
      ]),
    { code: 'HOST_SG_SPEC_INVALID' },
  );
});

test('router NAT script and validation', () => {
  const c = {
    routerUuid: 'r',
    guest: { l3NetworkUuid: 'l', ip: '10.2.0.1', prefixLength: 24, mtu: 1450, bridgeName: 'br_g' },
    public: { ip: '192.0.2.10', prefixLength: 24, gateway: '192.0.2.1', bridgeName: 'br_p' },
    dns: [],
    domainName: null,
    dhcp: [],
    snat: { publicIp: '192.0.2.10', guestCidr: '10.2.0.0/24' },
    eips: [{ eipUuid: 'e', publicIp: '192.0.2.20', guestIp: '10.2.0.5' }],
    portForwardings: [
      {
        ruleUuid: 'p',
        protocol: 'udp' as const,
        publicIp: '192.0.2.30',
        publicPortStart: 100,
        publicPortEnd: 101,
        guestIp: '10.2.0.6',
        privatePortStart: 200,
        privatePortEnd: 201,
        allowedCidr: '198.51.100.0/24',
      },
    ],
  };
  validateRouter(c);
  const s = natScript(ctx, c);
  assert.match(
    s,
    /ip saddr 198\.51\.100\.0\/24 ip daddr 192\.0\.2\.30 udp dport 100-101 dnat to 10\.2\.0\.6 : udp dport map \{ 100 : 200, 101 : 201 \}/,
  );
  assert.match(s, /ip daddr 192\.0\.2\.20 dnat to 10\.2\.0\.5/);
  assert.ok(
    s.indexOf('snat to 192.0.2.20') < s.indexOf('ip saddr 10.2.0.0/24'),
    'EIP SNAT before the network SNAT',
  );
  assert.throws(() => validateRouter({ ...c, public: { ...c.public, bridgeName: undefined } }), {
    code: 'HOST_ROUTER_CONFIG_INVALID',
  });
});

test('handlers refuse a bad version or a malformed state before touching the host', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-net-unit-'));
  try {
    const part = createNetworkPart({ namePrefix: 'u1', stateDir: dir });
    const h = part.handlers;
    await assert.rejects(h['sg.apply']?.({ version: 0, nics: [] }) ?? Promise.resolve(), {
      code: 'HOST_NETWORK_VERSION_INVALID',
    });
    await assert.rejects(h['sg.apply']?.({ version: 1, nics: undefined as never }) ?? Promise.resolve(), {
      code: 'HOST_SG_SPEC_INVALID',
    });
    await assert.rejects(
      h['network.ensure-bridges']?.({
        version: 1,
        bridges: [
          {
            l2NetworkUuid: 'l',
            type: 'vxlan',
            bridgeName: 'br;rm -rf',
            physicalInterface: null,
            vlan: null,
            vni: 0,
            mtu: 1,
          },
        ],
      }) ?? Promise.resolve(),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'HOST_BRIDGE_SPEC_INVALID');
        assert.match(err.message, /bridgeName/);
        assert.match(err.message, /vni/);
        assert.match(err.message, /mtu/);
        return true;
      },
    );
    await assert.rejects(
      h['dhcp.set-entries']?.({ version: 1, networks: [{}] as never }) ?? Promise.resolve(),
      {
        code: 'HOST_DHCP_SPEC_INVALID',
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
