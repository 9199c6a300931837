/**
 * Volume operations that involve a VM hold the VM (vm/hold.ts): here, which states each
 * operation needs and how a refusal reads.
 */
import type { Executor, Tx } from '../../../db/transaction.js';
import type { HostAddress } from '../../../drivers/port.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, missingReference } from '../../../kernel/errors.js';
import { refusal, TRANSITIONS, type VmState } from '../../../kernel/vm-states.js';
import { holdVm, releaseVmHold, type VmRow } from '../../compute/vm/hold.js';

export type { VmRow };
export type VolumeVmOp = 'attach-volume' | 'detach-volume' | 'revert-volume' | 'create-image';

/**
 * Attach and detach follow the transition table; a revert or an image copy needs the disk still,
 * so the VM must be Stopped (the table's rule for changes to a VM's hardware).
 */
export const VM_OP_FROM: Record<VolumeVmOp, readonly VmState[]> = {
  'attach-volume': TRANSITIONS['attach-volume'].from,
  'detach-volume': TRANSITIONS['detach-volume'].from,
  'revert-volume': TRANSITIONS['change-offering'].from,
  'create-image': TRANSITIONS['change-offering'].from,
};

/** hot-plug and unplug are sent to the hypervisor only while the VM runs there */
export function runsOnHost(state: string): boolean {
  return state === 'Running' || state === 'Paused';
}

/** The VM named by `vmUuid` in a body, if the caller may see it (its own, or any for the admin); a 400 VM_NOT_FOUND otherwise. */
export async function visibleVm(exec: Executor, caller: Caller, uuid: string): Promise<VmRow> {
  let q = exec.selectFrom('vms').selectAll().where('uuid', '=', uuid);
  if (!caller.isAdmin) q = q.where('accountUuid', '=', caller.accountUuid);
  const vm = await q.executeTakeFirst();
  if (!vm) throw missingReference('vmUuid', 'vm', uuid);
  return vm;
}

export function vmRefusal(
  vm: { uuid: string; state: string; task: string | null },
  op: VolumeVmOp,
): CloudError {
  const state = vm.state as VmState;
  if (op === 'attach-volume' || op === 'detach-volume') return refusal(vm.uuid, op, state, vm.task);
  if (vm.task !== null) {
    return new CloudError(
      'Conflict',
      'VM_BUSY',
      `vm ${vm.uuid} is busy with '${vm.task}'; ${op} must wait until it ends`,
      {
        details: { state, task: vm.task, operation: op },
        retryable: true,
      },
    );
  }
  const allowed = VM_OP_FROM[op];
  return new CloudError(
    'Conflict',
    'VM_INVALID_STATE',
    `cannot ${op} on vm ${vm.uuid}: it is ${state}; ${op} needs ${allowed.join(', ')}`,
    { details: { state, operation: op, allowedStates: allowed } },
  );
}

/** Takes the VM for `op` inside the admitting transaction, or throws the refusal. */
export function claimVm(tx: Tx, vmUuid: string, op: VolumeVmOp): Promise<VmRow> {
  return holdVm(tx, vmUuid, op, VM_OP_FROM[op], (vm) => vmRefusal(vm, op));
}

/** Ends the hold (idempotent: only a VM still held for `op` is touched). */
export function releaseVm(exec: Executor, vmUuid: string, op: VolumeVmOp): Promise<void> {
  return releaseVmHold(exec, vmUuid, op);
}

/** The host a VM runs on, when it runs and its host is Connected; null otherwise. */
export async function runningHost(exec: Executor, vmUuid: string): Promise<HostAddress | null> {
  const row = await exec
    .selectFrom('vms as v')
    .innerJoin('hosts as h', 'h.uuid', 'v.hostUuid')
    .select(['v.state', 'h.uuid', 'h.managementIp', 'h.hypervisorType', 'h.status'])
    .where('v.uuid', '=', vmUuid)
    .executeTakeFirst();
  if (!row || !runsOnHost(row.state)) return null;
  if (row.status !== 'Connected') {
    throw new CloudError(
      'Unavailable',
      'HOST_UNAVAILABLE',
      `host ${row.uuid} of vm ${vmUuid} is ${row.status}`,
      {
        details: { hostUuid: row.uuid, status: row.status },
        retryable: true,
      },
    );
  }
  return { uuid: row.uuid, managementIp: row.managementIp, hypervisorType: row.hypervisorType };
}
