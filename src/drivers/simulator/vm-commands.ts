/**
 * Simulated hypervisor: VMs live in `simulator_vms` (the simulator's world, apart from the
 * platform's `vms`), so the reconciler has something independent to compare with, and tests can
 * change a VM behind the platform's back. Every command is idempotent.
 */
import { CloudError } from '../../kernel/errors.js';
import type { SimContext, SimHandlers } from './machine.js';

type VmCommands =
  | 'vm.start'
  | 'vm.stop'
  | 'vm.reboot'
  | 'vm.pause'
  | 'vm.resume'
  | 'vm.destroy'
  | 'vm.migrate'
  | 'vm.attach-volume'
  | 'vm.detach-volume'
  | 'vm.resize-volume'
  | 'vm.list';

async function stateOf(ctx: SimContext<VmCommands>, vmUuid: string) {
  const row = await ctx.world
    .selectFrom('simulatorVms')
    .select(['state', 'hostAddress'])
    .where('vmUuid', '=', vmUuid)
    .executeTakeFirst();
  return row && row.hostAddress === ctx.machine.address ? row.state : undefined;
}

async function setState(ctx: SimContext<VmCommands>, vmUuid: string, state: string, needs?: string[]) {
  const current = await stateOf(ctx, vmUuid);
  if (current === undefined) {
    throw new CloudError(
      'NotFound',
      'VM_NOT_ON_HOST',
      `vm ${vmUuid} is not defined on ${ctx.machine.address}`,
    );
  }
  if (needs && !needs.includes(current) && current !== state) {
    throw new CloudError(
      'Conflict',
      'VM_POWER_STATE',
      `vm ${vmUuid} is ${current} on ${ctx.machine.address}`,
      {
        details: { powerState: current },
      },
    );
  }
  await ctx.world
    .updateTable('simulatorVms')
    .set({ state, updatedAt: new Date() })
    .where('vmUuid', '=', vmUuid)
    .execute();
}

export const vmHandlers: Pick<SimHandlers, VmCommands> = {
  'vm.start': async (ctx) => {
    const { vm } = ctx.request;
    await ctx.world
      .insertInto('simulatorVms')
      .values({
        vmUuid: vm.uuid,
        hostAddress: ctx.machine.address,
        state: 'Running',
        cpu: vm.cpu,
        memory: vm.memory,
        // what a real host's config drive would hold, rebuilt at every start as there
        userData: vm.userData ?? null,
        instanceId: vm.instanceId ?? null,
      })
      .onConflict((oc) =>
        oc.column('vmUuid').doUpdateSet({
          hostAddress: ctx.machine.address,
          state: 'Running',
          cpu: vm.cpu,
          memory: vm.memory,
          userData: vm.userData ?? null,
          instanceId: vm.instanceId ?? null,
          updatedAt: new Date(),
        }),
      )
      .execute();
    return { powerState: 'Running' };
  },
  'vm.stop': async (ctx) => {
    if ((await stateOf(ctx, ctx.request.vmUuid)) !== undefined)
      await setState(ctx, ctx.request.vmUuid, 'Stopped');
    return {};
  },
  'vm.reboot': async (ctx) => {
    await setState(ctx, ctx.request.vmUuid, 'Running', ['Running']);
    return {};
  },
  'vm.pause': async (ctx) => {
    await setState(ctx, ctx.request.vmUuid, 'Paused', ['Running']);
    return {};
  },
  'vm.resume': async (ctx) => {
    await setState(ctx, ctx.request.vmUuid, 'Running', ['Paused']);
    return {};
  },
  'vm.destroy': async (ctx) => {
    await ctx.world
      .deleteFrom('simulatorVms')
      .where('vmUuid', '=', ctx.request.vmUuid)
      .where('hostAddress', '=', ctx.machine.address)
      .execute();
    return {};
  },
  'vm.migrate': async (ctx) => {
    const current = await stateOf(ctx, ctx.request.vmUuid);
    const already = await ctx.world
      .selectFrom('simulatorVms')
      .select('hostAddress')
      .where('vmUuid', '=', ctx.request.vmUuid)
      .executeTakeFirst();
    if (already?.hostAddress === ctx.request.target) return {}; // done before a retry
    if (current !== 'Running') {
      throw new CloudError(
        'Conflict',
        'VM_POWER_STATE',
        `vm ${ctx.request.vmUuid} is not running on ${ctx.machine.address}`,
      );
    }
    await ctx.world
      .updateTable('simulatorVms')
      .set({ hostAddress: ctx.request.target, updatedAt: new Date() })
      .where('vmUuid', '=', ctx.request.vmUuid)
      .execute();
    return {};
  },
  'vm.attach-volume': async (ctx) => {
    if ((await stateOf(ctx, ctx.request.vmUuid)) === undefined) {
      throw new CloudError(
        'NotFound',
        'VM_NOT_ON_HOST',
        `vm ${ctx.request.vmUuid} is not defined on ${ctx.machine.address}`,
      );
    }
    return {};
  },
  'vm.detach-volume': async () => ({}),
  'vm.resize-volume': async (ctx) => {
    if ((await stateOf(ctx, ctx.request.vmUuid)) === undefined) {
      throw new CloudError(
        'NotFound',
        'VM_NOT_ON_HOST',
        `vm ${ctx.request.vmUuid} is not defined on ${ctx.machine.address}`,
      );
    }
    return {};
  },
  'vm.list': async (ctx) => {
    const rows = await ctx.world
      .selectFrom('simulatorVms')
      .select(['vmUuid', 'state'])
      .where('hostAddress', '=', ctx.machine.address)
      .execute();
    return { vms: rows.map((r) => ({ uuid: r.vmUuid, state: r.state as 'Running' | 'Stopped' | 'Paused' })) };
  },
};
