/**
 * Where a VM's files live: `<state-dir>/vms/<uuid>/`. The directory is the VM's definition on
 * this host (spec.json) and the handle on its QEMU (qemu.pid, qmp.sock); it outlives the agent
 * process, so a restarted agent finds its guests again. vm.destroy removes it.
 */
import { join } from 'node:path';
import { CloudError } from '../../kernel/errors.js';

const UUID_RE = /^[0-9a-fA-F-]{8,64}$/;

export interface VmPaths {
  dir: string;
  spec: string;
  pid: string;
  qmp: string;
  serial: string;
  vnc: string;
  configDrive: string;
  /** present while the VM waits for (or received) an incoming live migration */
  incoming: string;
}

export function checkVmUuid(uuid: unknown, field = 'vmUuid'): string {
  if (typeof uuid !== 'string' || !UUID_RE.test(uuid)) {
    throw new CloudError('Invalid', 'AGENT_VM_UUID_INVALID', `${field} must be a uuid`, {
      details: { field, value: typeof uuid === 'string' ? uuid.slice(0, 80) : typeof uuid },
    });
  }
  return uuid;
}

export function vmsDir(stateDir: string): string {
  return join(stateDir, 'vms');
}

export function vmPaths(stateDir: string, uuid: string): VmPaths {
  const dir = join(vmsDir(stateDir), checkVmUuid(uuid));
  return {
    dir,
    spec: join(dir, 'spec.json'),
    pid: join(dir, 'qemu.pid'),
    qmp: join(dir, 'qmp.sock'),
    serial: join(dir, 'serial.log'),
    vnc: join(dir, 'vnc.sock'),
    configDrive: join(dir, 'config-drive.img'),
    incoming: join(dir, 'incoming.json'),
  };
}

/** A request field that must be a JSON object (a spec), refused by name otherwise. */
export function checkObject<T>(value: T, field: string): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CloudError('Invalid', 'AGENT_REQUEST_INVALID', `${field} must be an object`, {
      details: { field },
    });
  }
  return value;
}

export function checkString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) {
    throw new CloudError('Invalid', 'AGENT_REQUEST_INVALID', `${field} must be a non-empty string`, {
      details: { field },
    });
  }
  return value;
}
