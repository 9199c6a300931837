/**
 * What the reconciler decides from a VM's row and its host's answer alone (no I/O): whether a VM
 * needs a repair at all, and whether a host holds a copy it should not have (reconciler.ts acts).
 */
import type { HostAddress } from '../../../drivers/port.js';

export type Reported = 'Running' | 'Paused' | 'Stopped';

export interface HostRow extends HostAddress {
  status: string;
  accountUuid: string;
  fencedAt: Date | null;
}

export interface VmRow {
  uuid: string;
  accountUuid: string;
  state: string;
  task: string | null;
  hostUuid: string | null;
  migrationTargetUuid: string | null;
  cpu: number;
  memory: number;
  haLevel: string;
  updatedAt: Date;
}

/** Whether `repair` would change anything (its conditions, without the database). */
export function needsRepair(host: HostRow, vm: VmRow, actual: Reported | undefined): boolean {
  if (staleCopy(host, vm, actual)) return true;
  const live = vm.state === 'Running' || vm.state === 'Paused' || vm.state === 'Unknown';
  if (vm.hostUuid === host.uuid && live) return actual !== vm.state;
  if (vm.state === 'Stopped' && !vm.hostUuid) return actual === 'Running' || actual === 'Paused';
  return vm.state === 'Destroyed' && actual !== undefined;
}

/**
 * Why `host` holds a copy it should not have, if it does: the VM is the platform's on another
 * host (running here, or a stopped definition left behind while this host was away), or this
 * host was fenced (its VMs are restarted elsewhere or left Stopped: it runs none of them again).
 */
export function staleCopy(
  host: HostRow,
  vm: VmRow,
  actual: Reported | undefined,
): 'fenced' | 'elsewhere' | undefined {
  const holdsHere = vm.hostUuid === host.uuid;
  const runsHere = actual === 'Running' || actual === 'Paused';
  if (host.fencedAt !== null && !holdsHere && vm.state !== 'Destroyed' && runsHere) return 'fenced';
  const elsewhere = vm.hostUuid !== null && !holdsHere && vm.migrationTargetUuid !== host.uuid;
  return elsewhere && actual !== undefined ? 'elsewhere' : undefined;
}
