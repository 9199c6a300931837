/**
 * Network scenarios: the full-state, versioned commands. The contract promises `applied: true`
 * for a state newer than the one the host has, and `applied: false` (success, nothing changed)
 * for the same or an older version; router.status tells the version a router runs (0 = none).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { DhcpNetwork, RouterConfig, SgNic } from '../../src/contract/agent.js';
import { type HostUnderTest, ok } from './host-under-test.js';
import type { SuiteContext } from './suite.js';

const applied = async (host: HostUnderTest, command: string, body: Record<string, unknown>) =>
  (await ok<{ applied: boolean }>(host, command, body)).applied;

/** `<subnet>.<n>` for the fixture's /24 */
export const addressIn = (subnet: string, n: number) => `${subnet.split('.').slice(0, 3).join('.')}.${n}`;

export function dhcpNetwork(ctx: SuiteContext, entries: DhcpNetwork['entries'] = []): DhcpNetwork {
  const { subnet } = ctx.host().fixtures;
  return {
    l3NetworkUuid: '00000000-0000-4000-8000-0000000000a0',
    bridgeName: ctx.bridges()[0]!.bridgeName,
    prefixLength: 24,
    gateway: addressIn(subnet, 1),
    dns: [],
    domainName: null,
    mtu: 1500,
    hostRoutes: [],
    serverIp: addressIn(subnet, 2),
    entries,
  };
}

export function networkScenarios(ctx: SuiteContext, timeout: number): void {
  test('network.ensure-bridges: newer applies, the same or an older version is kept out', {
    timeout,
  }, async () => {
    const host = ctx.host();
    const first = ctx.version();
    assert.equal(
      await applied(host, 'network.ensure-bridges', { version: first, bridges: ctx.bridges() }),
      true,
    );
    assert.equal(
      await applied(host, 'network.ensure-bridges', { version: first, bridges: ctx.bridges() }),
      false,
      'the same version again: idempotent, nothing applied',
    );
    const second = ctx.version();
    assert.equal(
      await applied(host, 'network.ensure-bridges', { version: second, bridges: ctx.bridges() }),
      true,
    );
    // an older state that would remove both bridges must not win over the newer one
    assert.equal(await applied(host, 'network.ensure-bridges', { version: first, bridges: [] }), false);
    assert.equal(await applied(host, 'network.ensure-bridges', { version: second, bridges: [] }), false);
  });

  test('dhcp.set-entries: versioned the same way', { timeout }, async () => {
    const host = ctx.host();
    const entry = {
      nicUuid: randomUUID(),
      mac: '52:54:00:c0:00:10',
      ip: addressIn(host.fixtures.subnet, 10),
      hostname: 'conf-a',
      gateway: addressIn(host.fixtures.subnet, 1),
      isDefault: true,
    };
    const v1 = ctx.version();
    assert.equal(
      await applied(host, 'dhcp.set-entries', { version: v1, networks: [dhcpNetwork(ctx, [entry])] }),
      true,
    );
    assert.equal(
      await applied(host, 'dhcp.set-entries', { version: v1, networks: [dhcpNetwork(ctx)] }),
      false,
    );
    const v2 = ctx.version();
    assert.equal(
      await applied(host, 'dhcp.set-entries', { version: v2, networks: [dhcpNetwork(ctx)] }),
      true,
    );
    assert.equal(await applied(host, 'dhcp.set-entries', { version: v1, networks: [] }), false, 'stale');
    // the newest state stays in force: a DHCP server without entries on the guest bridge
    assert.equal(await applied(host, 'dhcp.set-entries', { version: v2, networks: [] }), false);
  });

  test('sg.apply: versioned the same way', { timeout }, async () => {
    const host = ctx.host();
    const nic = (ports: number): SgNic => ({
      nicUuid: '00000000-0000-4000-8000-0000000000c1',
      mac: '52:54:00:c0:00:11',
      ip: addressIn(host.fixtures.subnet, 11),
      securityGroupUuids: ['00000000-0000-4000-8000-0000000000c2'],
      rules: [
        {
          ruleUuid: '00000000-0000-4000-8000-0000000000c3',
          direction: 'ingress',
          protocol: 'tcp',
          portStart: ports,
          portEnd: ports,
          ipVersion: 4,
          remoteCidrs: null,
        },
      ],
    });
    const v1 = ctx.version();
    assert.equal(await applied(host, 'sg.apply', { version: v1, nics: [nic(22)] }), true);
    const v2 = ctx.version();
    assert.equal(await applied(host, 'sg.apply', { version: v2, nics: [nic(80)] }), true);
    assert.equal(await applied(host, 'sg.apply', { version: v1, nics: [nic(22)] }), false, 'stale');
    assert.equal(await applied(host, 'sg.apply', { version: v2, nics: [] }), false, 'same version');
    assert.equal(await applied(host, 'sg.apply', { version: ctx.version(), nics: [] }), true);
  });

  test('router.apply-config and router.status: a router runs the newest version it was given', {
    timeout,
  }, async () => {
    const host = ctx.host();
    const routerUuid = randomUUID();
    const { subnet } = host.fixtures;
    const [guest, pub] = ctx.bridges();
    const config = (dns: string[]): RouterConfig => ({
      routerUuid,
      guest: {
        l3NetworkUuid: '00000000-0000-4000-8000-0000000000b0',
        ip: addressIn(subnet, 1),
        prefixLength: 24,
        mtu: 1500,
        bridgeName: guest!.bridgeName,
      },
      public: { ip: '192.0.2.10', prefixLength: 24, gateway: null, bridgeName: pub!.bridgeName },
      dns,
      domainName: null,
      dhcp: [],
      snat: { publicIp: '192.0.2.10', guestCidr: `${addressIn(subnet, 0)}/24` },
      eips: [],
      portForwardings: [],
    });
    assert.deepEqual(
      await ok(host, 'router.status', { routerUuid }),
      { version: 0 },
      'a router never configured',
    );
    const v1 = ctx.version();
    assert.equal(
      await applied(host, 'router.apply-config', { version: v1, config: config(['192.0.2.53']) }),
      true,
    );
    assert.deepEqual(await ok(host, 'router.status', { routerUuid }), { version: v1 });
    const v2 = ctx.version();
    assert.equal(await applied(host, 'router.apply-config', { version: v2, config: config([]) }), true);
    assert.equal(
      await applied(host, 'router.apply-config', { version: v1, config: config(['192.0.2.53']) }),
      false,
      'stale',
    );
    assert.equal(await applied(host, 'router.apply-config', { version: v2, config: config([]) }), false);
    assert.deepEqual(await ok(host, 'router.status', { routerUuid }), { version: v2 });
    assert.deepEqual(await ok(host, 'router.status', { routerUuid: randomUUID() }), { version: 0 });
  });
}
