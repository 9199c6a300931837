/**
 * The ways the router chains reach into the VM family, wired into FlowDeps by node.ts once the
 * services exist: create a router's appliance VM (VmService.createAppliance: the normal VM
 * create chain, owned by the admin account), destroy + expunge it (the normal VM chains, waited
 * for), and start it when it was stopped (the normal `vm.start` chain, submitted by the system).
 */
import { notFound } from '../../../kernel/errors.js';
import { submitOperation } from '../../compute/vm/operations.js';
import { runSystemVmOperation, vmRef } from '../../compute/vm/system-ops.js';
import type { ApplianceVmInput, FlowDeps, KindService, ServiceContext } from '../../service.js';

interface ApplianceMaker {
  createAppliance(input: ApplianceVmInput): Promise<{ vmUuid: string; jobUuid: string }>;
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
      await runSystemVmOperation(ctx, vmUuid, 'destroy', `router-destroy-${vmUuid}`);
      await runSystemVmOperation(ctx, vmUuid, 'expunge', `router-expunge-${vmUuid}`);
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
