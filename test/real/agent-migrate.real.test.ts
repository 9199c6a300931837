// Live migration between two real nimbus-agents (both in one test namespace, talking over its
// loopback; shared storage = the same disk path): the source asks the target to prepare, migrates
// over TCP, quits and forgets the VM; the guest goes on running under the target's QEMU.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { VmSpec, VolumeSpec } from '../../src/contract/agent.js';
import { ensureGuestImage, type GuestImage } from '../support/guest-image.js';
import { type Agent, alive, Lab, sh, skipReason } from './agent-harness.js';

const skip = skipReason();
if (skip) console.log(`# skipping agent migration real test: ${skip}`);

let lab: Lab;
let source: Agent;
let target: Agent;
let lonely: Agent;
let image: GuestImage;
const MIB = 1024 * 1024;

before(async () => {
  if (skip) return;
  image = await ensureGuestImage();
  lab = new Lab();
  const port = 18000 + Math.floor(Math.random() * 800);
  source = lab.agent(port, `s${lab.tag.slice(0, 4)}`);
  target = lab.agent(port + 1, `t${lab.tag.slice(0, 4)}`);
  // a host that shares no storage: its view of <lab>/local is an empty tmpfs
  mkdirSync(join(lab.dir, 'local'));
  lonely = lab.agent(port + 2, `l${lab.tag.slice(0, 4)}`, join(lab.dir, 'local'));
  await source.start();
  await target.start();
  await lonely.start();
});

after(() => {
  lab?.destroy();
});

test('vm.migrate moves a running guest to the target agent and the source forgets it', {
  skip,
  timeout: 600_000,
}, async () => {
  const root = join(lab.dir, 'disks', 'root.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'qcow2', root]);
  const uuid = randomUUID();
  const volume: VolumeSpec = { uuid: randomUUID(), size: 64 * MIB, format: 'qcow2', deviceId: 0, path: root };
  const vm: VmSpec = { uuid, name: 'mover', cpu: 1, memory: 256 * MIB, volumes: [volume], nics: [] };
  await source.ok('vm.start', { vm });
  await source.waitSerial(uuid, /NIMBUS-DISKS/);
  const sourcePid = source.qemuPid(uuid);
  assert.ok(sourcePid);

  await source.ok('vm.migrate', { vmUuid: uuid, target: target.address });

  assert.equal(alive(sourcePid), false, 'the source QEMU quit');
  assert.equal(existsSync(source.vmDir(uuid)), false, 'the source forgot the VM');
  assert.deepEqual((await source.ok('vm.list', {})).vms, []);
  assert.deepEqual((await target.ok('vm.list', {})).vms, [{ uuid, state: 'Running' }]);
  assert.ok(target.qemuPid(uuid));
  // sent again (its answer lost): done already, success; elsewhere it is still NotFound
  await source.ok('vm.migrate', { vmUuid: uuid, target: target.address });
  const elsewhere = await source.call('vm.migrate', { vmUuid: uuid, target: lonely.address });
  assert.equal((elsewhere.body.error as { code: string }).code, 'AGENT_VM_NOT_FOUND');

  // the guest lives on: a disk hot-plugged on the target shows in its serial output there
  const data = join(lab.dir, 'disks', 'data.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', data, String(16 * MIB)]);
  await target.ok('vm.attach-volume', {
    vmUuid: uuid,
    volume: { uuid: randomUUID(), size: 16 * MIB, format: 'qcow2', deviceId: 1, path: data },
  });
  await target.waitSerial(uuid, new RegExp(`NIMBUS-DISKS .*vdb:${(16 * MIB) / 512} `));

  await target.ok('vm.destroy', { vmUuid: uuid });
  assert.deepEqual((await target.ok('vm.list', {})).vms, []);
});

test('vm.migrate to a host without the disk files copies the disks too (block migration)', {
  skip,
  timeout: 600_000,
}, async () => {
  const root = join(lab.dir, 'local', 'root.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'qcow2', root]);
  const uuid = randomUUID();
  const volume: VolumeSpec = { uuid: randomUUID(), size: 64 * MIB, format: 'qcow2', deviceId: 0, path: root };
  const vm: VmSpec = { uuid, name: 'walker', cpu: 1, memory: 256 * MIB, volumes: [volume], nics: [] };
  await source.ok('vm.start', { vm });
  await source.waitSerial(uuid, /NIMBUS-DISKS/);

  await source.ok('vm.migrate', { vmUuid: uuid, target: lonely.address });
  assert.deepEqual((await source.ok('vm.list', {})).vms, []);
  assert.deepEqual((await lonely.ok('vm.list', {})).vms, [{ uuid, state: 'Running' }]);
  assert.ok(existsSync(root), 'the source host keeps its disk file (storage owns it)');

  // the guest reboots on the target from the disk copied there: its boot sector, kernel and initramfs came along
  await lonely.ok('vm.reboot', { vmUuid: uuid });
  await lonely.waitSerial(uuid, /NIMBUS-GUEST-BOOTED/);
  await lonely.waitSerial(uuid, /NIMBUS-DISKS vda:131072/);
  await lonely.ok('vm.destroy', { vmUuid: uuid });
});
