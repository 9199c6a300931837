/**
 * A NIC operation holds its VM (vm/hold.ts) while the VM is Running or Stopped, so an attach
 * never overlaps a stop, a migration or another NIC change; a second request is refused at once
 * naming the VM's state or task. The chain runs in the VM's queue (`vm:<uuid>`).
 */
import type { Executor, Tx } from '../../../db/transaction.js';
import type { FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import type { FlowDeps } from '../../service.js';
import { holdVm, releaseVmHold } from '../vm/hold.js';
import type { NicOpParams } from './model.js';

export type NicOp = 'attach-nic' | 'detach-nic' | 'change-nic-ip' | 'set-default-nic';

/** NICs change on a VM that runs or is stopped: not while it moves between the two */
export const NIC_OP_FROM = ['Running', 'Stopped'] as const;

export function nicRefusal(vm: { uuid: string; state: string; task: string | null }, op: NicOp): CloudError {
  if (vm.task !== null)
    return new CloudError(
      'Conflict',
      'VM_BUSY',
      `vm ${vm.uuid} is busy with '${vm.task}'; ${op} must wait until it ends`,
      {
        details: { state: vm.state, task: vm.task, operation: op },
        retryable: true,
      },
    );
  return new CloudError(
    'Conflict',
    'VM_INVALID_STATE',
    `cannot ${op} on vm ${vm.uuid}: it is ${vm.state}; ${op} needs ${NIC_OP_FROM.join(' or ')}`,
    { details: { state: vm.state, operation: op, allowedStates: NIC_OP_FROM } },
  );
}

/** Takes the VM for `op` inside the admitting transaction, or throws the refusal. */
export function claimVm(tx: Tx, vmUuid: string, op: NicOp) {
  return holdVm(tx, vmUuid, op, NIC_OP_FROM, (vm) => nicRefusal(vm, op));
}

/** Ends the hold (idempotent: only a VM still held for `op` is touched). */
export function releaseVm(exec: Executor, vmUuid: string, op: NicOp): Promise<void> {
  return releaseVmHold(exec, vmUuid, op);
}

/** The first step of every NIC chain: done at admission; its rollback lets the VM go. */
export function claimStep<P extends NicOpParams>(op: NicOp): FlowStep<P, FlowDeps> {
  return {
    name: 'claim-vm',
    describe: `hold the vm for ${op}`,
    async run() {},
    async rollback(ctx) {
      await releaseVm(ctx.db, ctx.params.vmUuid, op);
    },
  };
}

/** The last step: the VM is free again (nothing to undo: a failure here undoes the chain). */
export function releaseStep<P extends NicOpParams>(op: NicOp): FlowStep<P, FlowDeps> {
  return {
    name: 'release-vm',
    describe: 'let the vm go',
    local: true,
    async run(ctx) {
      await releaseVm(ctx.db, ctx.params.vmUuid, op);
    },
  };
}
