// The QEMU command line and device JSON built from a VmSpec (pure; no QEMU needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NicSpec, VmSpec, VolumeSpec } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { protocolNode, volumeBlockdev, volumeDevice, volumeNodeName } from './blockdev.js';
import { qemuArgs } from './command-line.js';
import { vmPaths } from './layout.js';

const MIB = 1024 * 1024;
const vol = (deviceId: number, path: string, format = 'qcow2'): VolumeSpec => ({
  uuid: `0190aaaa-0000-7000-8000-00000000000${deviceId}`,
  size: 64 * MIB,
  format,
  deviceId,
  path,
});
const nic: NicSpec = {
  uuid: '0190aaaa-0000-7000-8000-0000000000n1'.replace('n', 'f'),
  mac: '52:54:00:AA:00:01',
  l3NetworkUuid: 'l3',
  ip: null,
  prefixLength: null,
  gateway: null,
  deviceId: 0,
  isDefault: true,
  bridgeName: 'br0',
  mtu: 1500,
};
const vm: VmSpec = {
  uuid: '0190aaaa-0000-7000-8000-0000000000aa',
  name: 'v',
  cpu: 2,
  memory: 512 * MIB,
  volumes: [vol(1, '/d/data.raw', 'raw'), vol(0, '/d/root.qcow2')],
  nics: [nic],
};
const paths = vmPaths('/var/lib/nimbus-agent', vm.uuid);

test('the command line: accelerator, memory in MiB, daemonized with pidfile, QMP, serial file, VNC socket', () => {
  const args = qemuArgs(vm, {
    accelerator: 'tcg',
    paths,
    taps: new Map([[nic.uuid, 'tap1']]),
    configDrive: true,
  });
  const after = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(after('-accel'), 'tcg');
  assert.equal(after('-cpu'), 'qemu64');
  assert.equal(after('-m'), '512M');
  assert.equal(after('-smp'), '2');
  assert.equal(after('-pidfile'), paths.pid);
  assert.equal(after('-qmp'), `unix:${paths.qmp},server=on,wait=off`);
  assert.equal(after('-vnc'), `unix:${paths.vnc}`);
  assert.ok(args.includes('-daemonize') && args.includes('-nodefaults') && args.includes('-no-user-config'));
  assert.ok(args.includes(`tap,id=net-${nic.uuid},ifname=tap1,script=no,downscript=no`));
  const devices = args.flatMap((a, i) =>
    args[i - 1] === '-device' ? [JSON.parse(a) as Record<string, unknown>] : [],
  );
  // root first and bootable, volumes at 0x10+deviceId, config drive last, NIC at 0x03
  assert.deepEqual(
    devices.map((d) => [d.id, d.addr, d.bootindex]),
    [
      [`vol-${vm.volumes[1]!.uuid}`, '0x10', 0],
      [`vol-${vm.volumes[0]!.uuid}`, '0x11', undefined],
      ['config-drive', '0x1f', undefined],
      [`nic-${nic.uuid}`, '0x3', undefined],
    ],
  );
  assert.equal(devices[3]!.mac, '52:54:00:aa:00:01');
  assert.deepEqual(
    qemuArgs(vm, { accelerator: 'kvm', paths, taps: new Map([[nic.uuid, 't']]), configDrive: false }).slice(
      6,
      8,
    ),
    ['-cpu', 'host'],
  );
  const incoming = qemuArgs(vm, {
    accelerator: 'tcg',
    paths,
    taps: new Map([[nic.uuid, 't']]),
    configDrive: false,
    incoming: 'tcp:0.0.0.0:4444',
  });
  assert.deepEqual(incoming.slice(-2), ['-incoming', 'tcp:0.0.0.0:4444']);
});

test('block nodes: a path, nfs:// and rbd: each become their protocol driver; node names fit QEMU (≤ 31)', () => {
  assert.deepEqual(protocolNode('/a/b.qcow2'), { driver: 'file', filename: '/a/b.qcow2' });
  assert.deepEqual(protocolNode('nfs://10.0.0.5/export/v1.qcow2'), {
    driver: 'nfs',
    server: { type: 'inet', host: '10.0.0.5' },
    path: '/export/v1.qcow2',
  });
  assert.deepEqual(protocolNode('rbd:pool/img:conf=/etc/ceph/c.conf'), {
    driver: 'rbd',
    pool: 'pool',
    image: 'img',
    conf: '/etc/ceph/c.conf',
  });
  assert.ok(volumeNodeName(vm.uuid).length <= 31);
  assert.equal(volumeBlockdev(vm.volumes[0]!).driver, 'raw');
  assert.equal(volumeDevice(vm.volumes[0]!).drive, volumeNodeName(vm.volumes[0]!.uuid));
});

test('a bad spec is refused naming the field, before anything runs', () => {
  const bad = (spec: Partial<VmSpec>, field: RegExp) =>
    assert.throws(
      () =>
        qemuArgs(
          { ...vm, ...spec },
          { accelerator: 'tcg', paths, taps: new Map([[nic.uuid, 't']]), configDrive: false },
        ),
      (err: unknown) => err instanceof CloudError && err.reason === 'Invalid' && field.test(err.message),
    );
  bad({ memory: 1000 }, /vm\.memory/);
  bad({ cpu: 0 }, /vm\.cpu/);
  bad({ volumes: [vol(0, '/a'), vol(0, '/b')] }, /deviceId 0 used twice/);
  bad({ volumes: [vol(0, 'relative/path')] }, /volume\.path/);
  bad({ volumes: [vol(0, '/a', 'vmdk')] }, /vmdk/);
  bad({ volumes: [vol(20, '/a')] }, /volume\.deviceId/);
  bad({ nics: [{ ...nic, mac: 'nope' }] }, /nic\.mac/);
});
