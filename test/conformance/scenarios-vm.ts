/**
 * VM scenarios: a VM made from a cached image through its power states and back to nothing, the
 * answers for a VM the host does not have, and hot-plug of a volume and a NIC on a running VM.
 * Contract points checked: vm.start/stop/destroy are idempotent (a missing VM stops and destroys
 * as success), vm.list shows exactly the power state, a command that needs the VM answers
 * NotFound AGENT_VM_NOT_FOUND when the host has no such VM and Conflict AGENT_VM_NOT_RUNNING when
 * it is not running, attach/detach are idempotent both ways, vm.serial-log answers at most the
 * bytes asked for of what the host keeps, for a running or a stopped VM.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { NicSpec, VmSpec, VolumeSpec } from '../../src/contract/agent.js';
import { type HostUnderTest, ok, refused } from './host-under-test.js';
import { addressIn } from './scenarios-network.js';
import type { SuiteContext } from './suite.js';

const MIB = 1024 * 1024;

async function powerState(host: HostUnderTest, uuid: string): Promise<string | undefined> {
  const { vms } = await ok<{ vms: Array<{ uuid: string; state: string }> }>(host, 'vm.list', {});
  for (const vm of vms) assert.ok(['Running', 'Stopped', 'Paused'].includes(vm.state), JSON.stringify(vm));
  return vms.find((v) => v.uuid === uuid)?.state;
}

/** a root volume cloned from the fixture image, cached first (twice: the same answer) */
async function rootVolume(host: HostUnderTest): Promise<{ volume: VolumeSpec; imageUuid: string }> {
  const { storage, image } = host.fixtures;
  const imageUuid = randomUUID();
  const request = {
    imageUuid,
    url: image.url,
    size: 64 * MIB,
    storage,
    ...(image.sha256 ? { sha256: image.sha256 } : {}),
  };
  const cached = await ok<{ path: string; size: number }>(host, 'image.cache', request);
  assert.ok(typeof cached.path === 'string' && cached.path.length > 0);
  assert.ok(Number.isSafeInteger(cached.size) && cached.size > 0);
  assert.deepEqual(await ok(host, 'image.cache', request), cached, 'caching it again: the same copy');
  const size = Math.max(cached.size, 64 * MIB);
  const volumeUuid = randomUUID();
  const made = await ok<{ path: string; actualSize: number }>(host, 'volume.create', {
    volumeUuid,
    size,
    format: 'qcow2',
    storage,
    fromImageCachePath: cached.path,
  });
  assert.ok(typeof made.path === 'string' && made.path.length > 0);
  assert.ok(Number.isSafeInteger(made.actualSize) && made.actualSize >= 0);
  return { volume: { uuid: volumeUuid, size, format: 'qcow2', deviceId: 0, path: made.path }, imageUuid };
}

function vmSpec(uuid: string, root: VolumeSpec, nics: NicSpec[] = []): VmSpec {
  return { uuid, name: 'conformance', cpu: 1, memory: 256 * MIB, volumes: [root], nics };
}

function nicSpec(ctx: SuiteContext, n: number): NicSpec {
  return {
    uuid: randomUUID(),
    mac: `52:54:00:c0:01:${String(n).padStart(2, '0')}`,
    l3NetworkUuid: '00000000-0000-4000-8000-0000000000a0',
    ip: addressIn(ctx.host().fixtures.subnet, 20 + n),
    prefixLength: 24,
    gateway: addressIn(ctx.host().fixtures.subnet, 1),
    deviceId: n,
    isDefault: n === 0,
    bridgeName: ctx.bridges()[0]!.bridgeName,
    mtu: 1500,
  };
}

/** vm.serial-log's shape: at most `tailBytes` of the `size` bytes the host keeps */
async function serialLog(host: HostUnderTest, vmUuid: string, tailBytes: number) {
  const got = await ok<{ log: string; size: number }>(host, 'vm.serial-log', { vmUuid, tailBytes });
  assert.equal(typeof got.log, 'string');
  assert.ok(Number.isSafeInteger(got.size) && got.size >= 0, `size ${got.size}`);
  const bytes = Buffer.byteLength(got.log);
  // a character cut at the start shows as U+FFFD (3 bytes for 1 to 3 cut ones)
  assert.ok(
    bytes <= tailBytes + 2 && bytes <= Math.max(got.size, 0) + 2,
    `${bytes} of ${tailBytes}/${got.size}`,
  );
  return got;
}

/** removes what a scenario made, whatever state it got to */
async function cleanup(host: HostUnderTest, vmUuid: string, volumes: string[], imageUuid?: string) {
  await host.send('vm.destroy', { vmUuid });
  for (const volumeUuid of volumes)
    await host.send('volume.delete', { volumeUuid, storage: host.fixtures.storage });
  if (imageUuid) await host.send('image.uncache', { imageUuid, storage: host.fixtures.storage });
}

async function expectError(
  host: HostUnderTest,
  command: string,
  body: unknown,
  reason: string,
  code: string,
) {
  const err = await refused(host, command, body);
  assert.deepEqual(
    { command, reason: err.reason, code: err.code },
    { command, reason, code },
    `${command}: ${err.message}`,
  );
}

export function vmScenarios(ctx: SuiteContext, timeout: number): void {
  test('a VM from a cached image: start, pause, stop, start again, reboot, destroy — each idempotent', {
    timeout,
  }, async () => {
    const host = ctx.host();
    const uuid = randomUUID();
    const { volume, imageUuid } = await rootVolume(host);
    try {
      const vm = vmSpec(uuid, volume);
      assert.deepEqual(await ok(host, 'vm.start', { vm }), { powerState: 'Running' });
      assert.equal(await powerState(host, uuid), 'Running');
      assert.deepEqual(
        await ok(host, 'vm.start', { vm }),
        { powerState: 'Running' },
        'starting a running VM',
      );
      await host.guestReady(uuid);

      assert.deepEqual(await ok(host, 'vm.pause', { vmUuid: uuid }), {});
      assert.equal(await powerState(host, uuid), 'Paused');
      await ok(host, 'vm.pause', { vmUuid: uuid });
      assert.deepEqual(
        await ok(host, 'vm.start', { vm }),
        { powerState: 'Paused' },
        'a start leaves it paused',
      );
      assert.deepEqual(await ok(host, 'vm.resume', { vmUuid: uuid }), {});
      assert.equal(await powerState(host, uuid), 'Running');
      await ok(host, 'vm.resume', { vmUuid: uuid });

      assert.deepEqual(await ok(host, 'vm.stop', { vmUuid: uuid, force: false }), {});
      assert.equal(await powerState(host, uuid), 'Stopped', 'a stopped VM stays defined');
      await ok(host, 'vm.stop', { vmUuid: uuid, force: false });
      await ok(host, 'vm.stop', { vmUuid: uuid, force: true });
      assert.equal(await powerState(host, uuid), 'Stopped');
      // a stopped VM's serial log is still there; the tail asked for bounds the answer
      const all = await serialLog(host, uuid, 1024 * 1024);
      // it ran (guestReady: a real guest printed to its serial port; the simulator's synthetic boot)
      assert.ok(all.size > 0 && all.log.length > 0, 'a VM that ran has a serial log');
      const tail = await serialLog(host, uuid, 16);
      assert.equal(tail.size, all.size);
      if (all.size > 16) assert.ok(all.log.endsWith(tail.log.replace(/^\uFFFD+/, '')));
      const badTail = await refused(host, 'vm.serial-log', { vmUuid: uuid, tailBytes: 0 });
      assert.deepEqual([badTail.reason, badTail.code], ['Invalid', 'AGENT_REQUEST_INVALID']);
      for (const command of ['vm.pause', 'vm.resume', 'vm.reboot'])
        await expectError(host, command, { vmUuid: uuid }, 'Conflict', 'AGENT_VM_NOT_RUNNING');

      assert.deepEqual(await ok(host, 'vm.start', { vm }), { powerState: 'Running' });
      assert.equal(await powerState(host, uuid), 'Running');
      await host.guestReady(uuid);
      assert.deepEqual(await ok(host, 'vm.reboot', { vmUuid: uuid }), {});
      assert.equal(await powerState(host, uuid), 'Running');

      assert.deepEqual(await ok(host, 'vm.destroy', { vmUuid: uuid }), {});
      assert.equal(await powerState(host, uuid), undefined, 'gone from vm.list');
      await ok(host, 'vm.destroy', { vmUuid: uuid });
      await ok(host, 'vm.stop', { vmUuid: uuid, force: true });
      assert.equal(await powerState(host, uuid), undefined, 'a stop does not bring it back');
    } finally {
      await cleanup(host, uuid, [volume.uuid], imageUuid);
    }
  });

  test('a VM the host does not have: stop and destroy succeed, the rest is NotFound AGENT_VM_NOT_FOUND', {
    timeout,
  }, async () => {
    const host = ctx.host();
    const vmUuid = randomUUID();
    const volume: VolumeSpec = {
      uuid: randomUUID(),
      size: 32 * MIB,
      format: 'qcow2',
      deviceId: 1,
      path: '/nonexistent',
    };
    await ok(host, 'vm.stop', { vmUuid, force: false });
    await ok(host, 'vm.stop', { vmUuid, force: true });
    await ok(host, 'vm.destroy', { vmUuid });
    const cases: Array<[string, Record<string, unknown>]> = [
      ['vm.reboot', { vmUuid }],
      ['vm.pause', { vmUuid }],
      ['vm.resume', { vmUuid }],
      ['vm.attach-volume', { vmUuid, volume }],
      ['vm.detach-volume', { vmUuid, volumeUuid: volume.uuid }],
      ['vm.resize-volume', { vmUuid, volumeUuid: volume.uuid, size: 64 * MIB }],
      ['vm.attach-nic', { vmUuid, nic: nicSpec(ctx, 1) }],
      ['vm.detach-nic', { vmUuid, nicUuid: randomUUID() }],
      ['vm.migrate', { vmUuid, target: 'http://192.0.2.1:7070' }],
      ['vm.serial-log', { vmUuid, tailBytes: 100 }],
    ];
    for (const [command, body] of cases)
      await expectError(host, command, body, 'NotFound', 'AGENT_VM_NOT_FOUND');
    assert.equal(await powerState(host, vmUuid), undefined, 'none of them defined it');
  });

  test('hot-plug on a running VM: attach and detach a volume and a NIC, each twice', {
    timeout,
  }, async () => {
    const host = ctx.host();
    const uuid = randomUUID();
    const { volume: root, imageUuid } = await rootVolume(host);
    const dataUuid = randomUUID();
    try {
      const made = await ok<{ path: string }>(host, 'volume.create', {
        volumeUuid: dataUuid,
        size: 32 * MIB,
        format: 'qcow2',
        storage: host.fixtures.storage,
      });
      const data: VolumeSpec = {
        uuid: dataUuid,
        size: 32 * MIB,
        format: 'qcow2',
        deviceId: 1,
        path: made.path,
      };
      assert.deepEqual(await ok(host, 'vm.start', { vm: vmSpec(uuid, root, [nicSpec(ctx, 0)]) }), {
        powerState: 'Running',
      });
      await host.guestReady(uuid);

      assert.deepEqual(await ok(host, 'vm.attach-volume', { vmUuid: uuid, volume: data }), {});
      await ok(host, 'vm.attach-volume', { vmUuid: uuid, volume: data });
      assert.deepEqual(
        await ok(host, 'vm.resize-volume', { vmUuid: uuid, volumeUuid: dataUuid, size: 48 * MIB }),
        {},
      );
      assert.deepEqual(await ok(host, 'vm.detach-volume', { vmUuid: uuid, volumeUuid: dataUuid }), {});
      await ok(host, 'vm.detach-volume', { vmUuid: uuid, volumeUuid: dataUuid });

      const nic = nicSpec(ctx, 1);
      assert.deepEqual(await ok(host, 'vm.attach-nic', { vmUuid: uuid, nic }), {});
      await ok(host, 'vm.attach-nic', { vmUuid: uuid, nic });
      assert.deepEqual(await ok(host, 'vm.detach-nic', { vmUuid: uuid, nicUuid: nic.uuid }), {});
      await ok(host, 'vm.detach-nic', { vmUuid: uuid, nicUuid: nic.uuid });
      assert.equal(await powerState(host, uuid), 'Running', 'hot-plug left it running');
    } finally {
      await cleanup(host, uuid, [dataUuid, root.uuid], imageUuid);
    }
  });
}
