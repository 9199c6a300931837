/**
 * Real, through nimbus-agent itself (the bundle, in a host namespace, over HTTP): a virtual
 * router's appliance VM is realised as the router's namespace with no QEMU — start, a config
 * applied (a guest namespace gets its DHCP lease from the router), an agent restart that finds
 * it again, reboot (empty again, status 0), refusals, stop and destroy leaving no namespace,
 * dnsmasq, veth, record or state directory. Skips (printing why) without root, the tools or the bundle.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BridgeSpec, RouterConfig, VmSpec } from '../../contract/agent.js';
import { namesFor } from '../network/names.js';
import { Lab, leftovers, TestAgent, trySh } from '../network/testing/harness.js';
import { bundleSkipReason, HttpAgent } from '../network/testing/http-agent.js';

const skip = bundleSkipReason();

/** PIDs of live processes whose command line mentions `needle` (dnsmasq, QEMU of our state dir) */
function processesWith(needle: string, program: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(program) && cmdline.includes(needle)) out.push(Number(pid));
    } catch {
      // gone
    }
  }
  return out;
}

const namespaces = () =>
  trySh('ip', ['netns', 'list'])
    .out.split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '');

test('a router appliance VM is its namespace: no QEMU; stop and destroy leave nothing', {
  skip,
}, async (t) => {
  const lab = new Lab();
  const h = lab.ns('h');
  const pub = lab.ns('pub');
  lab.wire(h, 'up0', '', pub, 'eth0', '192.168.78.1/24');
  lab.wire(h, 'u0', '10.250.5.1/24', lab.ns('u'), 'u1', '10.250.5.2/24');
  const prefix = `v${randomBytes(2).toString('hex')}`;
  const agent = new HttpAgent(h, lab.dir, prefix);
  const stateDir = join(lab.dir, 'state');
  t.after(async () => {
    await agent.stop();
    lab.agents.push(new TestAgent(h, { namePrefix: prefix, stateDir }));
    await lab.destroy();
  });
  await agent.start();
  const names = namesFor(prefix);
  const host = { hostNs: h, names };
  const ok = (command: string, request: unknown) => {
    const r = agent.send(command, request);
    assert.equal(r.status, 200, `${command}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const vni = 3000 + Math.floor(Math.random() * 60000);
  const guestBr = `br_vx_${vni}`;
  const bridges: BridgeSpec[] = [
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
  ];
  ok('network.ensure-bridges', { version: 1, bridges });
  const guest = lab.guest(host, 'g', guestBr);
  const vmUuid = randomUUID();
  const routerUuid = randomUUID();
  const ns = names.routerNs(routerUuid);
  const vm: VmSpec = {
    uuid: vmUuid,
    name: 'vr-appliance',
    cpu: 1,
    memory: 256 * 1024 * 1024,
    // a root disk that does not exist: QEMU would refuse it, the appliance never opens it
    volumes: [
      { uuid: randomUUID(), size: 1 << 30, format: 'qcow2', deviceId: 0, path: join(lab.dir, 'none.qcow2') },
    ],
    nics: [],
    appliance: { type: 'virtual-router', routerUuid },
  };
  const config: RouterConfig = {
    routerUuid,
    guest: { l3NetworkUuid: randomUUID(), ip: '10.63.0.1', prefixLength: 24, mtu: 1450, bridgeName: guestBr },
    public: { ip: '192.168.78.10', prefixLength: 24, gateway: '192.168.78.1', bridgeName: 'br_up0' },
    dns: [],
    domainName: null,
    dhcp: [
      {
        nicUuid: guest.nicUuid,
        mac: guest.mac,
        ip: '10.63.0.11',
        hostname: 'g',
        gateway: '10.63.0.1',
        isDefault: true,
      },
    ],
    snat: { publicIp: '192.168.78.10', guestCidr: '10.63.0.0/24' },
    eips: [],
    portForwardings: [],
  };
  const listed = () =>
    (ok('vm.list', {}).vms as Array<{ uuid: string; state: string }>).find((v) => v.uuid === vmUuid)?.state;
  const status = () => (ok('router.status', { routerUuid }) as { version: number }).version;
  const routerDir = join(stateDir, 'router', ns);
  const dnsmasqPid = () => Number(readFileSync(join(routerDir, 'dnsmasq.pid'), 'utf8').trim());
  /** what of the router or the appliance is still on the host */
  const remains = () => [
    ...namespaces()
      .filter((n) => n === ns)
      .map((n) => `netns ${n}`),
    ...processesWith(stateDir, 'dnsmasq').map((p) => `dnsmasq ${p}`),
    ...trySh('ip', ['-n', h, '-o', 'link', 'show'])
      .out.split('\n')
      .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
      .filter((l) => l === names.routerGuestVeth(routerUuid) || l === names.routerPublicVeth(routerUuid))
      .map((l) => `veth ${l}`),
    ...(existsSync(routerDir) ? [`dir ${routerDir}`] : []),
  ];

  await t.test('vm.start makes the namespace, boots no QEMU, and the VM is listed Running', () => {
    assert.deepEqual(ok('vm.start', { vm }), { powerState: 'Running' });
    assert.deepEqual(ok('vm.start', { vm }), { powerState: 'Running' }, 'a second start is success');
    assert.ok(namespaces().includes(ns), `namespace ${ns} exists`);
    assert.deepEqual(processesWith(vmUuid, 'qemu-system'), [], 'no QEMU runs for it');
    assert.equal(existsSync(join(stateDir, 'vms', vmUuid)), false, 'no QEMU definition');
    assert.ok(existsSync(join(stateDir, 'appliances', `${vmUuid}.json`)), 'the appliance is recorded');
    assert.equal(listed(), 'Running');
    assert.equal(status(), 0, 'an empty router: the management side sends its config');
  });

  await t.test('its config applies: the guest gets its lease from the router', () => {
    assert.deepEqual(ok('router.apply-config', { version: 5, config }), { applied: true });
    assert.equal(lab.dhcp(guest)?.ip, '10.63.0.11');
    assert.equal(status(), 5);
  });

  await t.test('a restarted agent finds the appliance and its router again', async () => {
    const pid = dnsmasqPid();
    await agent.stop();
    await agent.start();
    assert.equal(listed(), 'Running');
    assert.equal(status(), 5);
    assert.equal(dnsmasqPid(), pid, 'the same dnsmasq serves on');
  });

  await t.test('vm.reboot brings the router back empty (status 0) until the config is sent again', () => {
    const pid = dnsmasqPid();
    ok('vm.reboot', { vmUuid });
    assert.equal(status(), 0);
    assert.ok(namespaces().includes(ns));
    assert.deepEqual(processesWith(stateDir, 'dnsmasq'), [], `dnsmasq ${pid} is gone`);
    assert.deepEqual(ok('router.apply-config', { version: 6, config }), { applied: true });
    assert.equal(lab.dhcp(guest)?.ip, '10.63.0.11');
    assert.equal(listed(), 'Running');
  });

  await t.test('pause and migrate are refused, naming why', () => {
    for (const [command, request] of [
      ['vm.pause', { vmUuid }],
      ['vm.migrate', { vmUuid, target: '10.250.5.2' }],
    ] as const) {
      const r = agent.send(command, request);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, 'HOST_APPLIANCE_UNSUPPORTED');
      assert.match(r.body.error?.message ?? '', /appliance of virtual router/);
    }
    assert.equal(listed(), 'Running', 'nothing changed');
  });

  await t.test(
    'vm.stop leaves no namespace, dnsmasq, veth or state; a config while stopped makes none',
    () => {
      ok('vm.stop', { vmUuid, force: false });
      ok('vm.stop', { vmUuid, force: false });
      assert.deepEqual(remains(), []);
      assert.equal(listed(), 'Stopped');
      assert.equal(status(), 0);
      assert.deepEqual(ok('router.apply-config', { version: 7, config }), { applied: false });
      assert.deepEqual(remains(), [], 'the stopped appliance stays stopped');
    },
  );

  await t.test('started again it serves again; its namespace lost (host reboot) lists it Stopped', () => {
    ok('vm.start', { vm });
    assert.deepEqual(ok('router.apply-config', { version: 8, config }), { applied: true });
    assert.equal(lab.dhcp(guest)?.ip, '10.63.0.11');
    // what a host reboot does: the dnsmasq and the namespace vanish behind the agent's back
    process.kill(dnsmasqPid(), 'SIGKILL');
    trySh('ip', ['netns', 'del', ns]);
    assert.equal(listed(), 'Stopped');
    assert.equal(status(), 0);
  });

  await t.test('vm.destroy leaves nothing and forgets the VM; a second destroy is success', () => {
    ok('vm.start', { vm });
    ok('router.apply-config', { version: 9, config });
    assert.ok(processesWith(stateDir, 'dnsmasq').length === 1, 'its dnsmasq runs');
    ok('vm.destroy', { vmUuid });
    ok('vm.destroy', { vmUuid });
    assert.deepEqual(remains(), []);
    assert.equal(listed(), undefined);
    assert.equal(existsSync(join(stateDir, 'appliances', `${vmUuid}.json`)), false);
    assert.deepEqual(processesWith(vmUuid, 'qemu-system'), [], 'never a QEMU');
    ok('network.ensure-bridges', { version: 2, bridges: [] });
    assert.deepEqual(
      leftovers(host, ['br_up0', guestBr]).filter((l) => !l.includes(guest.tap)),
      [],
      'nothing of the agent but the guest port',
    );
  });
});
