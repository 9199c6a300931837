// nimbus-agent for real: the bundled agent in a network namespace of its own, a guest booted from
// the test image's disk (TCG), a TAP from the network part on a bridge with the agent's DHCP,
// and every VM command checked against what the guest and the host really show.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { NicSpec, VmSpec, VolumeSpec } from '../../src/contract/agent.js';
import { ensureGuestImage, type GuestImage } from '../support/guest-image.js';
import { type Agent, alive, Lab, sh, skipReason } from './agent-harness.js';

const skip = skipReason();
if (skip) console.log(`# skipping agent-vm real tests: ${skip}`);

let lab: Lab;
let agent: Agent;
let image: GuestImage;
const MIB = 1024 * 1024;

function overlay(name: string): string {
  const path = join(lab.dir, 'disks', `${name}.qcow2`);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'qcow2', path]);
  return path;
}

function blank(name: string, size: number): string {
  const path = join(lab.dir, 'disks', `${name}.qcow2`);
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(size)]);
  return path;
}

const sectors = (bytes: number) => bytes / 512;

before(async () => {
  if (skip) return;
  image = await ensureGuestImage();
  lab = new Lab();
  agent = lab.agent(17170 + Math.floor(Math.random() * 800), `a${lab.tag.slice(0, 4)}`);
  await agent.start();
});

after(() => {
  lab?.destroy();
});

test('the agent refuses what it must: no secret, wrong secret, unknown command, bad body, unknown VM', {
  skip,
}, async () => {
  const wrong = await agent.call('host.ping', {}, { secret: 'not-the-secret' });
  assert.equal(wrong.status, 401);
  assert.deepEqual(Object.keys(wrong.body), ['error']);
  assert.equal((wrong.body.error as { code: string }).code, 'AGENT_UNAUTHENTICATED');
  const unknownUnauth = await agent.call('no.such', {}, { secret: '' });
  assert.equal(unknownUnauth.status, 401, 'an unauthenticated caller does not learn which commands exist');

  const unknown = await agent.call('vm.fly', {});
  assert.equal(unknown.status, 404);
  assert.equal((unknown.body.error as { code: string }).code, 'AGENT_COMMAND_UNKNOWN');

  const malformed = await agent.call('vm.list', undefined, { raw: '{"vm": ' });
  assert.equal(malformed.status, 400);
  assert.match((malformed.body.error as { message: string }).message, /not valid JSON/);
  const notObject = await agent.call('vm.list', undefined, { raw: '[1,2]' });
  assert.equal(notObject.status, 400);
  assert.match((notObject.body.error as { message: string }).message, /must be a JSON object/);

  const missing = randomUUID();
  const pause = await agent.call('vm.pause', { vmUuid: missing });
  assert.equal(pause.status, 404);
  assert.equal((pause.body.error as { code: string }).code, 'AGENT_VM_NOT_FOUND');
  assert.match(
    (pause.body.error as { message: string }).message,
    new RegExp(`VM ${missing} is not defined on this host`),
  );
  assert.equal(
    (await agent.call('vm.destroy', { vmUuid: missing })).status,
    200,
    'destroying a missing VM is success',
  );
  const noVolume = await agent.call('vm.attach-volume', { vmUuid: missing });
  assert.equal(noVolume.status, 400);
  assert.match((noVolume.body.error as { message: string }).message, /volume must be an object/);

  const facts = await agent.ok<{ accelerator: string; hypervisorVersion: string; cpuModel: string }>(
    'host.connect',
    {},
  );
  assert.equal(facts.accelerator, 'tcg');
  assert.match(
    sh('qemu-system-x86_64', ['--version']),
    new RegExp(facts.hypervisorVersion.replace(/\./g, '\\.')),
  );
  const capacity = await agent.ok<{ cpu: number; memory: number; disk: number }>('host.capacity', {});
  assert.ok(capacity.cpu >= 1 && capacity.memory > 256 * MIB && capacity.disk > 0);
});

test('a VM boots from its disk, gets DHCP on a real TAP, runs user-data, and every VM command acts on it', {
  skip,
  timeout: 900_000,
}, async () => {
  // the L2: a bridge on a veth end (the other end is the "host" address, for ping and http)
  lab.inNs('ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  lab.inNs('ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'up1');
  lab.inNs('ip', 'link', 'set', 'up1', 'up');
  const bridgeName = `br${lab.tag}`;
  const l3 = randomUUID();
  await agent.ok('network.ensure-bridges', {
    version: 1,
    bridges: [
      {
        l2NetworkUuid: randomUUID(),
        type: 'no-vlan',
        bridgeName,
        physicalInterface: 'up0',
        vlan: null,
        vni: null,
        mtu: 1500,
      },
    ],
  });
  const nic: NicSpec = {
    uuid: randomUUID(),
    mac: '52:54:00:77:00:10',
    l3NetworkUuid: l3,
    ip: '10.77.0.10',
    prefixLength: 24,
    gateway: '10.77.0.1',
    deviceId: 0,
    isDefault: true,
    bridgeName,
    mtu: 1500,
  };
  const nic2: NicSpec = {
    ...nic,
    uuid: randomUUID(),
    mac: '52:54:00:77:00:11',
    ip: '10.77.0.11',
    deviceId: 1,
    isDefault: false,
  };
  await agent.ok('dhcp.set-entries', {
    version: 1,
    networks: [
      {
        l3NetworkUuid: l3,
        bridgeName,
        prefixLength: 24,
        gateway: '10.77.0.1',
        dns: [],
        domainName: null,
        mtu: 1500,
        hostRoutes: [],
        serverIp: '10.77.0.2',
        entries: [
          {
            nicUuid: nic.uuid,
            mac: nic.mac,
            ip: '10.77.0.10',
            hostname: 'guest1',
            gateway: '10.77.0.1',
            isDefault: true,
          },
          {
            nicUuid: nic2.uuid,
            mac: nic2.mac,
            ip: '10.77.0.11',
            hostname: 'guest1',
            gateway: null,
            isDefault: false,
          },
        ],
      },
    ],
  });

  const uuid = randomUUID();
  const root: VolumeSpec = {
    uuid: randomUUID(),
    size: 64 * MIB,
    format: 'qcow2',
    deviceId: 0,
    path: overlay('root'),
  };
  const vm: VmSpec = {
    uuid,
    name: 'guest1',
    hostname: 'guest1',
    cpu: 1,
    memory: 256 * MIB,
    volumes: [root],
    nics: [nic],
    userData: '#!/bin/sh\necho "user-data says $(hostname)"\n',
  };
  assert.deepEqual(await agent.ok('vm.start', { vm }), { powerState: 'Running' });
  assert.deepEqual(
    await agent.ok('vm.start', { vm }),
    { powerState: 'Running' },
    'starting a running VM is success',
  );
  const pid = agent.qemuPid(uuid);
  assert.ok(pid, 'a QEMU runs for the VM');
  await agent.waitSerial(uuid, /NIMBUS-GUEST-BOOTED/);
  await agent.waitSerial(uuid, /NIMBUS-CONFIG-DRIVE hostname=guest1/);
  await agent.waitSerial(uuid, /user-data says guest1/);
  const dhcp = await agent.waitSerial(uuid, /NIMBUS-DHCP-OK ip=(\S+) mac=(\S+)/);
  assert.equal(dhcp[1], '10.77.0.10');
  assert.equal(dhcp[2], nic.mac);
  lab.inNs('busybox', 'ping', '-c', '1', '-W', '5', '10.77.0.10');
  assert.match(lab.inNs('curl', '-s', '-m', '10', 'http://10.77.0.10/'), /nimbus-guest guest1/);

  await agent.ok('vm.pause', { vmUuid: uuid });
  assert.deepEqual((await agent.ok('vm.list', {})).vms, [{ uuid, state: 'Paused' }]);
  await agent.ok('vm.resume', { vmUuid: uuid });
  assert.deepEqual((await agent.ok('vm.list', {})).vms, [{ uuid, state: 'Running' }]);

  // hot-plug a 32 MiB disk, then grow it to 48 MiB: the guest prints its disks when they change
  const data: VolumeSpec = {
    uuid: randomUUID(),
    size: 32 * MIB,
    format: 'qcow2',
    deviceId: 1,
    path: blank('data', 32 * MIB),
  };
  let mark = agent.serial(uuid).length;
  await agent.ok('vm.attach-volume', { vmUuid: uuid, volume: data });
  await agent.ok('vm.attach-volume', { vmUuid: uuid, volume: data });
  await agent.waitSerial(uuid, new RegExp(`NIMBUS-DISKS .*vd[a-z]:${sectors(32 * MIB)} `), mark);
  mark = agent.serial(uuid).length;
  await agent.ok('vm.resize-volume', { vmUuid: uuid, volumeUuid: data.uuid, size: 48 * MIB });
  await agent.waitSerial(uuid, new RegExp(`NIMBUS-DISKS .*vd[a-z]:${sectors(48 * MIB)} `), mark);
  mark = agent.serial(uuid).length;
  await agent.ok('vm.detach-volume', { vmUuid: uuid, volumeUuid: data.uuid });
  await agent.ok('vm.detach-volume', { vmUuid: uuid, volumeUuid: data.uuid });
  const after = await agent.waitSerial(uuid, /NIMBUS-DISKS ([^\n]*)\n/, mark);
  assert.doesNotMatch(after[1] ?? '', new RegExp(`:${sectors(48 * MIB)} `));

  // hot-plug a second NIC: its TAP comes from the network part, the guest gets DHCP on it
  mark = agent.serial(uuid).length;
  await agent.ok('vm.attach-nic', { vmUuid: uuid, nic: nic2 });
  await agent.ok('vm.attach-nic', { vmUuid: uuid, nic: nic2 });
  const dhcp2 = await agent.waitSerial(uuid, /NIMBUS-DHCP-OK ip=(\S+) mac=(\S+) iface=(\S+)/, mark);
  assert.deepEqual(dhcp2.slice(1, 3), ['10.77.0.11', nic2.mac]);
  lab.inNs('busybox', 'ping', '-c', '1', '-W', '5', '10.77.0.11');
  mark = agent.serial(uuid).length;
  await agent.ok('vm.detach-nic', { vmUuid: uuid, nicUuid: nic2.uuid });
  await agent.ok('vm.detach-nic', { vmUuid: uuid, nicUuid: nic2.uuid });
  const nics = await agent.waitSerial(uuid, /NIMBUS-NICS ([^\n]*)\n/, mark);
  assert.equal(nics[1]?.trim(), `eth0:${nic.mac}`);

  // the agent dies and comes back: the guest keeps running under the same QEMU
  agent.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  await agent.start();
  assert.equal(agent.qemuPid(uuid), pid, 'same QEMU process after the agent restart');
  assert.deepEqual((await agent.ok('vm.list', {})).vms, [{ uuid, state: 'Running' }]);
  lab.inNs('busybox', 'ping', '-c', '1', '-W', '5', '10.77.0.10');

  // QEMU dies behind the agent's back: the VM is Stopped, not gone
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && agent.qemuPid(uuid) !== undefined; i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await agent.ok('vm.list', {})).vms, [{ uuid, state: 'Stopped' }]);
  assert.equal((await agent.call('vm.pause', { vmUuid: uuid })).status, 409);

  // start it again, then an ACPI stop: the guest powers itself off and QEMU exits
  mark = agent.serial(uuid).length;
  await agent.ok('vm.start', { vm });
  await agent.waitSerial(uuid, /NIMBUS-DHCP-OK/, mark);
  await agent.waitSerial(uuid, /NIMBUS-DISKS/, mark);
  const pid2 = agent.qemuPid(uuid);
  assert.ok(pid2 && pid2 !== pid);
  // reboot: the same QEMU, the guest boots again
  mark = agent.serial(uuid).length;
  await agent.ok('vm.reboot', { vmUuid: uuid });
  await agent.waitSerial(uuid, /NIMBUS-GUEST-BOOTED/, mark);
  await agent.waitSerial(uuid, /NIMBUS-DISKS/, mark);
  assert.equal(agent.qemuPid(uuid), pid2);
  mark = agent.serial(uuid).length;
  await agent.ok('vm.stop', { vmUuid: uuid, force: false });
  assert.match(
    agent.serial(uuid).slice(mark),
    /NIMBUS-ACPI-POWERDOWN/,
    'the guest got the ACPI power button',
  );
  assert.equal(alive(pid2), false, 'QEMU exited');
  assert.deepEqual((await agent.ok('vm.list', {})).vms, [{ uuid, state: 'Stopped' }]);
  await agent.ok('vm.stop', { vmUuid: uuid, force: true });

  await agent.ok('vm.destroy', { vmUuid: uuid });
  assert.equal(existsSync(agent.vmDir(uuid)), false, 'the VM directory is gone');
  assert.deepEqual((await agent.ok('vm.list', {})).vms, []);
});
