/**
 * The QEMU command line of a VM, built from its VmSpec and nothing else that varies (TAP names
 * and the config drive come in as arguments), so the source and the target of a live migration
 * build the same machine. Pure: no I/O.
 */
import type { VmSpec } from '../../contract/agent.js';
import { invalidField } from '../../kernel/errors.js';
import type { Accelerator } from '../host/facts.js';
import {
  configDriveBlockdev,
  configDriveDevice,
  MAX_NICS,
  MAX_VOLUMES,
  nicDevice,
  nicNetdevId,
  volumeBlockdev,
  volumeDevice,
} from './blockdev.js';
import type { VmPaths } from './layout.js';

export interface CommandLineOptions {
  accelerator: Accelerator;
  paths: VmPaths;
  /** NIC uuid → TAP name (every NIC of the spec must have one) */
  taps: Map<string, string>;
  configDrive: boolean;
  /** `tcp:host:port`: start waiting for an incoming live migration */
  incoming?: string;
}

const MIB = 1024 * 1024;

/** Refuses a spec QEMU could not run, naming every bad field at once. */
export function checkSpec(vm: VmSpec): void {
  const problems: Array<{ field: string; problem: string }> = [];
  if (!Number.isInteger(vm.cpu) || vm.cpu < 1 || vm.cpu > 255)
    problems.push({ field: 'vm.cpu', problem: 'must be 1–255' });
  if (!Number.isInteger(vm.memory) || vm.memory < 16 * MIB || vm.memory % MIB !== 0) {
    problems.push({ field: 'vm.memory', problem: 'must be bytes, a whole number of MiB, at least 16 MiB' });
  }
  if (!Array.isArray(vm.volumes) || vm.volumes.length > MAX_VOLUMES) {
    problems.push({ field: 'vm.volumes', problem: `must be a list of at most ${MAX_VOLUMES}` });
  }
  if (!Array.isArray(vm.nics) || vm.nics.length > MAX_NICS) {
    problems.push({ field: 'vm.nics', problem: `must be a list of at most ${MAX_NICS}` });
  }
  const ids = new Set<number>();
  for (const v of Array.isArray(vm.volumes) ? vm.volumes : []) {
    if (ids.has(v.deviceId))
      problems.push({ field: 'vm.volumes', problem: `deviceId ${v.deviceId} used twice` });
    ids.add(v.deviceId);
  }
  const nicIds = new Set<number>();
  for (const n of Array.isArray(vm.nics) ? vm.nics : []) {
    if (nicIds.has(n.deviceId))
      problems.push({ field: 'vm.nics', problem: `deviceId ${n.deviceId} used twice` });
    nicIds.add(n.deviceId);
  }
  if (problems.length > 0) {
    const first = problems[0]!;
    const err = invalidField(first.field, first.problem, 'AGENT_VM_SPEC_INVALID');
    if (problems.length > 1) Object.assign(err.details ?? {}, { fields: problems });
    throw err;
  }
}

export function qemuArgs(vm: VmSpec, opts: CommandLineOptions): string[] {
  checkSpec(vm);
  const { paths } = opts;
  const args = [
    '-name',
    `guest=${vm.uuid},debug-threads=on`,
    '-machine',
    'pc',
    '-accel',
    opts.accelerator,
    '-cpu',
    opts.accelerator === 'kvm' ? 'host' : 'qemu64',
    '-m',
    `${vm.memory / MIB}M`,
    '-smp',
    String(vm.cpu),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vnc',
    `unix:${paths.vnc}`,
    '-chardev',
    `file,id=serial0,path=${paths.serial},append=on`,
    '-serial',
    'chardev:serial0',
    '-qmp',
    `unix:${paths.qmp},server=on,wait=off`,
    '-pidfile',
    paths.pid,
    '-daemonize',
  ];
  for (const volume of [...vm.volumes].sort((a, b) => a.deviceId - b.deviceId)) {
    args.push(
      '-blockdev',
      JSON.stringify(volumeBlockdev(volume)),
      '-device',
      JSON.stringify(volumeDevice(volume)),
    );
  }
  if (opts.configDrive) {
    args.push(
      '-blockdev',
      JSON.stringify(configDriveBlockdev(paths.configDrive)),
      '-device',
      JSON.stringify(configDriveDevice()),
    );
  }
  for (const nic of [...vm.nics].sort((a, b) => a.deviceId - b.deviceId)) {
    const tap = opts.taps.get(nic.uuid);
    if (tap === undefined) throw new Error(`no TAP for NIC ${nic.uuid}`);
    args.push(
      '-netdev',
      `tap,id=${nicNetdevId(nic.uuid)},ifname=${tap},script=no,downscript=no`,
      '-device',
      JSON.stringify(nicDevice(nic)),
    );
  }
  if (opts.incoming !== undefined) args.push('-incoming', opts.incoming);
  return args;
}
