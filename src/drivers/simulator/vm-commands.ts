/**
 * Simulated hypervisor: VMs live in `simulator_vms` (the simulator's world, apart from the
 * platform's `vms`), so the reconciler has something independent to compare with, and tests can
 * change a VM behind the platform's back. Every command is idempotent: start of a running or
 * paused VM (left as it is), stop of a stopped or missing one, destroy of a missing one, pause of
 * a paused one all succeed.
 * A command that needs the VM answers as nimbus-agent does: NotFound AGENT_VM_NOT_FOUND when this
 * host has no such VM, Conflict AGENT_VM_NOT_RUNNING when it is not in a state the command needs.
 * (The simulator does not keep a VM's devices, so attach/detach/resize of a device are accepted
 * for any VM it has: it does not refuse a deviceId clash or an unknown volume as the agent does.)
 */
import { sql } from 'kysely';
import type { AgentCommand } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { SimContext, SimHandlers } from './machine.js';
import { SIM_SERIAL_KEEP, simulatedBootLog } from './serial-log.js';
import { listVms } from './vm-list-batch.js';

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
  | 'vm.list'
  | 'vm.serial-log';

async function stateOf(ctx: Pick<SimContext<AgentCommand>, 'world' | 'machine'>, vmUuid: string) {
  const row = await ctx.world
    .selectFrom('simulatorVms')
    .select(['state', 'hostAddress'])
    .where('vmUuid', '=', vmUuid)
    .executeTakeFirst();
  return row && row.hostAddress === ctx.machine.address ? row.state : undefined;
}

/** nimbus-agent's answer for a VM it does not have (src/agent/qemu/hypervisor.ts) */
export function vmNotOnHost(vmUuid: string): CloudError {
  return new CloudError('NotFound', 'AGENT_VM_NOT_FOUND', `VM ${vmUuid} is not defined on this host`, {
    details: { vmUuid },
  });
}

/** the VM's power state here; NotFound when this host does not have it */
export async function definedState(
  ctx: Pick<SimContext<AgentCommand>, 'world' | 'machine'>,
  vmUuid: string,
): Promise<string> {
  const state = await stateOf(ctx, vmUuid);
  if (state === undefined) throw vmNotOnHost(vmUuid);
  return state;
}

async function setState(ctx: SimContext<VmCommands>, vmUuid: string, state: string, needs?: string[]) {
  const current = await definedState(ctx, vmUuid);
  if (needs && !needs.includes(current) && current !== state) {
    throw new CloudError('Conflict', 'AGENT_VM_NOT_RUNNING', `VM ${vmUuid} is ${current} on this host`, {
      details: { vmUuid, powerState: current },
    });
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
    const here = ctx.machine.address;
    const boot = simulatedBootLog(vm, here, 'start');
    // a VM already running or paused here is left as it is and its power state answered (as the
    // agent does: its QEMU runs, nothing is restarted); one statement on the usual path
    const started = await ctx.world
      .insertInto('simulatorVms')
      .values({
        vmUuid: vm.uuid,
        hostAddress: here,
        state: 'Running',
        cpu: vm.cpu,
        memory: vm.memory,
        // what a real host's config drive would hold, rebuilt at every start as there
        userData: vm.userData ?? null,
        instanceId: vm.instanceId ?? null,
        serialLog: boot,
      })
      .onConflict((oc) =>
        oc
          .column('vmUuid')
          .doUpdateSet({
            hostAddress: here,
            state: 'Running',
            cpu: vm.cpu,
            memory: vm.memory,
            userData: vm.userData ?? null,
            instanceId: vm.instanceId ?? null,
            serialLog: sql<string>`right(simulator_vms.serial_log || ${boot}, ${SIM_SERIAL_KEEP})`,
            updatedAt: new Date(),
          })
          .where((eb) =>
            eb.or([eb('simulatorVms.hostAddress', '!=', here), eb('simulatorVms.state', '=', 'Stopped')]),
          ),
      )
      .returning('state')
      .executeTakeFirst();
    if (started !== undefined) return { powerState: 'Running' };
    return { powerState: ((await stateOf(ctx, vm.uuid)) ?? 'Running') as 'Running' | 'Paused' };
  },
  'vm.stop': async (ctx) => {
    if ((await stateOf(ctx, ctx.request.vmUuid)) !== undefined)
      await setState(ctx, ctx.request.vmUuid, 'Stopped');
    return {};
  },
  'vm.reboot': async (ctx) => {
    await setState(ctx, ctx.request.vmUuid, 'Running', ['Running']);
    const vm = await ctx.world
      .selectFrom('simulatorVms')
      .select(['cpu', 'memory', 'userData'])
      .where('vmUuid', '=', ctx.request.vmUuid)
      .executeTakeFirstOrThrow();
    const boot = simulatedBootLog(
      {
        uuid: ctx.request.vmUuid,
        cpu: vm.cpu,
        memory: vm.memory,
        ...(vm.userData !== null ? { userData: vm.userData } : {}),
      },
      ctx.machine.address,
      'reboot',
    );
    await ctx.world
      .updateTable('simulatorVms')
      .set({ serialLog: sql<string>`right(serial_log || ${boot}, ${SIM_SERIAL_KEEP})` })
      .where('vmUuid', '=', ctx.request.vmUuid)
      .execute();
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
    if (current === undefined) throw vmNotOnHost(ctx.request.vmUuid);
    if (current !== 'Running') {
      throw new CloudError(
        'Conflict',
        'AGENT_VM_NOT_RUNNING',
        `VM ${ctx.request.vmUuid} is not running on this host`,
        {
          details: { vmUuid: ctx.request.vmUuid, powerState: current },
        },
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
    await definedState(ctx, ctx.request.vmUuid);
    return {};
  },
  'vm.detach-volume': async (ctx) => {
    await definedState(ctx, ctx.request.vmUuid);
    return {};
  },
  'vm.resize-volume': async (ctx) => {
    await definedState(ctx, ctx.request.vmUuid);
    return {};
  },
  'vm.list': async (ctx) => ({ vms: await listVms(ctx.world, ctx.machine.address) }),
  // what this host keeps of the VM's (synthetic) log: any VM defined here, running or not
  'vm.serial-log': async (ctx) => {
    await definedState(ctx, ctx.request.vmUuid);
    const { serialLog } = await ctx.world
      .selectFrom('simulatorVms')
      .select('serialLog')
      .where('vmUuid', '=', ctx.request.vmUuid)
      .executeTakeFirstOrThrow();
    const all = Buffer.from(serialLog, 'utf8');
    return {
      log: all.subarray(Math.max(0, all.length - ctx.request.tailBytes)).toString('utf8'),
      size: all.length,
    };
  },
};
