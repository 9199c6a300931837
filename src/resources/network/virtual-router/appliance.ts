/**
 * The ways the router chains reach into the VM family, wired into FlowDeps by node.ts once the
 * services exist: create a router's appliance VM (VmService.createAppliance: the normal VM
 * create chain, owned by the admin account), destroy + expunge it (the normal VM chains, waited
 * for), and start it when it was stopped (the normal `vm.start` chain, submitted by the system).
 */
import type { JobRow } from '../../../engine/jobs.js';
import { CloudError, notFound } from '../../../kernel/errors.js';
import { submitOperation } from '../../compute/vm/operations.js';
import type { ApplianceVmInput, FlowDeps, KindService, ServiceContext } from '../../service.js';

interface ApplianceMaker {
  createAppliance(input: ApplianceVmInput): Promise<{ vmUuid: string; jobUuid: string }>;
}

const JOB_WAIT_MS = 120_000;

async function finished(ctx: ServiceContext, job: JobRow): Promise<JobRow> {
  const deadline = Date.now() + JOB_WAIT_MS;
  for (;;) {
    const row = await ctx.engine.waitFor(job.uuid, Math.max(1, deadline - Date.now()));
    if (row && ['Succeeded', 'Failed', 'Cancelled'].includes(row.state)) return row;
    if (Date.now() >= deadline)
      throw new CloudError(
        'Timeout',
        'APPLIANCE_VM_TIMEOUT',
        `job ${job.uuid} (${job.kind}) did not finish in time`,
      );
  }
}

const vmRef = (ctx: ServiceContext, vmUuid: string) =>
  ctx.db
    .selectFrom('vms')
    .select(['uuid', 'accountUuid', 'state', 'task'])
    .where('uuid', '=', vmUuid)
    .executeTakeFirst();

async function runVmOperation(ctx: ServiceContext, vmUuid: string, op: 'destroy' | 'expunge'): Promise<void> {
  const vm = await vmRef(ctx, vmUuid);
  if (!vm) return;
  if (op === 'destroy' && vm.state === 'Destroyed') return;
  const job = await submitOperation(ctx, { userUuid: null, requestId: `router-${op}-${vmUuid}` }, vm, op);
  const done = await finished(ctx, job);
  if (done.state !== 'Succeeded')
    throw new CloudError('Internal', 'APPLIANCE_VM_FAILED', `${op} of appliance vm ${vmUuid} failed`, {
      details: { jobUuid: job.uuid, error: done.error },
    });
}

export function applianceHooks(
  ctx: ServiceContext,
  services: KindService[],
): Pick<FlowDeps, 'createApplianceVm' | 'removeApplianceVm' | 'startApplianceVm'> {
  const maker = services.find(
    (s): s is KindService & ApplianceMaker =>
      typeof (s as Partial<ApplianceMaker>).createAppliance === 'function',
  );
  return {
    ...(maker ? { createApplianceVm: (input: ApplianceVmInput) => maker.createAppliance(input) } : {}),
    removeApplianceVm: async (vmUuid: string) => {
      await runVmOperation(ctx, vmUuid, 'destroy');
      await runVmOperation(ctx, vmUuid, 'expunge');
    },
    // not waited for here: the VMs that need the router wait for it (start.ts)
    startApplianceVm: async (vmUuid: string) => {
      const vm = await vmRef(ctx, vmUuid);
      if (!vm) throw notFound('vm', vmUuid);
      const job = await submitOperation(
        ctx,
        { userUuid: null, requestId: `router-start-${vmUuid}` },
        vm,
        'start',
      );
      return { jobUuid: job.uuid };
    },
  };
}
