/**
 * The shape every VM operation chain shares: admitted in the transaction that submits its job
 * (the conditional UPDATE of transitions.ts, plus whatever the operation reserves there, such as
 * a quota increase), with a first step `admit` journaled as done whose rollback puts the VM back
 * in the state it came from; the chain runs in the VM's queue (`vm:<uuid>`).
 */
import type { Tx } from '../../../db/transaction.js';
import type { FlowStep, StepContext } from '../../../engine/flow.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import type { VmOperation, VmState } from '../../../kernel/vm-states.js';
import { queueKey } from '../../common.js';
import type { FlowDeps, ServiceContext } from '../../service.js';
import { type VmOpParams, vmFamily } from './model.js';
import { admitOperation, finishOperation } from './transitions.js';

/**
 * The admission, as the chain's first step. Its rollback puts the VM back in the state it came
 * from; `undo` (what the admission reserved) runs in the same transaction, only while the VM
 * still carries the task — so a rollback repeated after a crash never gives anything back twice.
 */
export function admitStep<P extends VmOpParams>(
  op: VmOperation,
  undo?: (ctx: StepContext<P, FlowDeps>, tx: Tx) => Promise<void>,
): FlowStep<P, FlowDeps> {
  return {
    name: 'admit',
    describe: `admit ${op}`,
    async run() {},
    async rollback(ctx) {
      await finishOperation(
        ctx,
        op,
        { state: ctx.params.fromState },
        undo ? (tx) => undo(ctx, tx) : undefined,
      );
    },
  };
}

export interface VmRef {
  uuid: string;
  accountUuid: string;
  state: string;
  task: string | null;
}

/**
 * Admits `op` on the VM and submits `vm.<op>` in one transaction, then starts the job. `reserve`
 * runs in that transaction after the state change (its refusal undoes the admission too).
 */
export async function submitOperation(
  ctx: ServiceContext,
  caller: Pick<Caller, 'requestId'> & { userUuid: string | null },
  vm: VmRef,
  op: VmOperation,
  params: Record<string, unknown> = {},
  reserve?: (tx: Tx, fromState: VmState) => Promise<void>,
): Promise<JobRow> {
  const job = await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    const fromState = await admitOperation(tx, vm, op, batch);
    await reserve?.(tx, fromState);
    return ctx.engine.submit(
      tx,
      {
        kind: `vm.${op}`,
        params: { ...params, uuid: vm.uuid, fromState } satisfies VmOpParams,
        accountUuid: vm.accountUuid,
        userUuid: caller.userUuid,
        resourceKind: vmFamily.kind,
        resourceUuid: vm.uuid,
        queueKey: queueKey(vmFamily, vm.uuid),
        requestId: caller.requestId,
        done: ['admit'],
      },
      batch,
    );
  });
  ctx.engine.start(job.uuid, job.queueKey);
  return job;
}
