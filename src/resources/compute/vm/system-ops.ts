/**
 * VM operations the platform itself runs (no user asked): a router's appliance removed, a pool
 * VM reclaimed at its lease's end. Each is the ordinary chain (`submitOperation`), submitted as
 * the system and waited for; a VM already where the operation would take it is success, so
 * flows that call these may repeat them after a crash.
 */
import type { JobRow } from '../../../engine/jobs.js';
import { CloudError } from '../../../kernel/errors.js';
import type { VmOperation } from '../../../kernel/vm-states.js';
import type { ServiceContext } from '../../service.js';
import { submitOperation } from './operations.js';

const JOB_WAIT_MS = 120_000;

/** Where each operation leaves a VM: asking for it again there is a no-op. */
const DONE_IN: Partial<Record<VmOperation, string[]>> = {
  destroy: ['Destroyed'],
  stop: ['Stopped', 'Destroyed'],
  start: ['Running'],
};

export async function finishedJob(
  ctx: ServiceContext,
  job: JobRow,
  timeoutMs = JOB_WAIT_MS,
): Promise<JobRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await ctx.engine.waitFor(job.uuid, Math.max(1, deadline - Date.now()));
    if (row && ['Succeeded', 'Failed', 'Cancelled'].includes(row.state)) return row;
    if (Date.now() >= deadline)
      throw new CloudError(
        'Timeout',
        'SYSTEM_JOB_TIMEOUT',
        `job ${job.uuid} (${job.kind}) did not finish in time`,
        {
          retryable: true,
        },
      );
  }
}

export const vmRef = (ctx: ServiceContext, vmUuid: string) =>
  ctx.db
    .selectFrom('vms')
    .select(['uuid', 'accountUuid', 'state', 'task'])
    .where('uuid', '=', vmUuid)
    .executeTakeFirst();

/** Runs `op` on the VM as the system and waits for it; a missing VM, or one already there, is success. */
export async function runSystemVmOperation(
  ctx: ServiceContext,
  vmUuid: string,
  op: VmOperation,
  requestId: string,
  params: Record<string, unknown> = {},
): Promise<void> {
  const vm = await vmRef(ctx, vmUuid);
  if (!vm) return;
  if (DONE_IN[op]?.includes(vm.state)) return;
  const job = await submitOperation(ctx, { userUuid: null, requestId }, vm, op, params);
  const done = await finishedJob(ctx, job);
  if (done.state !== 'Succeeded')
    throw new CloudError('Internal', 'SYSTEM_VM_OPERATION_FAILED', `${op} of vm ${vmUuid} failed`, {
      details: { jobUuid: job.uuid, error: done.error },
      retryable: true,
    });
}
