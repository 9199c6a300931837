/**
 * Volume operations that involve a VM hold the VM the way every VM operation does (see
 * kernel/vm-states.ts): admitted by one conditional UPDATE in the submitting transaction —
 * `state in allowed and task is null` → `task = op` — and released (`task = null where
 * task = op`) when the chain ends or rolls back. So an attach never overlaps a stop, a
 * migration or another attach; a second request is refused at once with the VM's state or task.
 */
import type { Selectable } from 'kysely';
import type { VmTable } from '../../db/schema.js';
import type { Executor, Tx } from '../../db/transaction.js';
import type { HostAddress } from '../../drivers/port.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, notFound } from '../../kernel/errors.js';
import { refusal, TRANSITIONS, type VmState } from '../../kernel/vm-states.js';

export type VmRow = Selectable<VmTable>;
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

/** The VM if the caller may see it (its own, or any for the admin); VM_NOT_FOUND otherwise. */
export async function visibleVm(exec: Executor, caller: Caller, uuid: string): Promise<VmRow> {
  let q = exec.selectFrom('vms').selectAll().where('uuid', '=', uuid);
  if (!caller.isAdmin) q = q.where('accountUuid', '=', caller.accountUuid);
  const vm = await q.executeTakeFirst();
  if (!vm) throw notFound('vm', uuid);
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
export async function claimVm(tx: Tx, vmUuid: string, op: VolumeVmOp): Promise<VmRow> {
  for (let attempt = 0; ; attempt++) {
    const row = await tx
      .updateTable('vms')
      .set({ task: op, updatedAt: new Date() })
      .where('uuid', '=', vmUuid)
      .where('state', 'in', [...VM_OP_FROM[op]])
      .where('task', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
    const now = await tx
      .selectFrom('vms')
      .select(['uuid', 'state', 'task'])
      .where('uuid', '=', vmUuid)
      .executeTakeFirst();
    if (!now) throw notFound('vm', vmUuid);
    // released between the UPDATE and the read: the refusal would name an allowed state; try again
    const allowed = now.task === null && VM_OP_FROM[op].includes(now.state as VmState);
    if (!allowed || attempt >= 2) throw vmRefusal(now, op);
  }
}

/** Ends the hold (idempotent: only a VM still held for `op` is touched). */
export async function releaseVm(exec: Executor, vmUuid: string, op: VolumeVmOp): Promise<void> {
  await exec
    .updateTable('vms')
    .set({ task: null, updatedAt: new Date() })
    .where('uuid', '=', vmUuid)
    .where('task', '=', op)
    .execute();
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
