/**
 * Power chains: start, stop, reboot, pause, resume, change-offering. Each is `admit` (done at
 * admission) → the host command (with the command that undoes it as rollback) → the final state;
 * start and stop also move the VM's NICs onto / off its host and re-sync its network
 * (network-steps.ts).
 *
 * Capacity: a stop gives the host's CPU and memory back in the same transaction that marks the
 * VM Stopped; a start takes them again — on the host of its root volume when that is on local
 * storage (the disks cannot move), else on any host the scheduler finds that reaches the
 * volume's storage.
 */
import type { FlowDef, FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { releaseHost } from './host-capacity.js';
import type { VmOpParams } from './model.js';
import { leaveHostNetworkStep, nicsStep } from './network-steps.js';
import { admitStep } from './operations.js';
import { place } from './placement.js';
import {
  dropStaleDefinition,
  hostAddress,
  restartOnHost,
  startSpec,
  type VmCtx,
  type VmRuntime,
} from './runtime.js';
import { finishOperation, markState, vmResult, vmRow } from './transitions.js';

type Step<P = VmOpParams> = FlowStep<P, FlowDeps>;

/** What the platform may add to a start (the API's start takes none of it). */
export interface StartParams extends VmOpParams {
  hostUuid?: string;
  excludeHosts?: string[];
}
type Ctx = VmCtx<VmOpParams>;

const result = vmResult;

/** The host the VM holds, or a clear error (e.g. an Error VM that never got one). */
async function heldHost(rt: VmRuntime, ctx: Ctx) {
  const vm = await vmRow(ctx.db, ctx.params.uuid);
  if (!vm.hostUuid) throw new CloudError('Conflict', 'VM_NOT_ON_HOST', `vm ${vm.uuid} is on no host`);
  return { vm, host: await hostAddress(rt, ctx.db, vm.hostUuid) };
}

/** A command on the VM's host, with the command that undoes it. */
function hostStep(
  rt: VmRuntime,
  name: string,
  describe: string,
  run: (ctx: Ctx, h: Awaited<ReturnType<typeof heldHost>>) => Promise<void>,
  undo?: (ctx: Ctx, h: Awaited<ReturnType<typeof heldHost>>) => Promise<void>,
): Step {
  return {
    name,
    describe,
    run: async (ctx) => run(ctx, await heldHost(rt, ctx)),
    ...(undo
      ? {
          rollback: async (ctx: Ctx) => {
            const vm = await vmRow(ctx.db, ctx.params.uuid);
            if (vm.hostUuid) await undo(ctx, { vm, host: await hostAddress(rt, ctx.db, vm.hostUuid) });
          },
        }
      : {}),
  };
}

const mark = (
  name: string,
  state: string,
  powerState: string,
  op: 'start' | 'reboot' | 'pause' | 'resume',
): Step => ({
  name,
  describe: `mark the vm ${state}`,
  async run(ctx) {
    await markState(ctx, op, { state, powerState });
  },
});

function allocateForStart(rt: VmRuntime): Step {
  return {
    name: 'allocate-host',
    describe: 'reserve CPU and memory on a host that reaches its volumes',
    async run(ctx) {
      const vm = await vmRow(ctx.db, ctx.params.uuid);
      if (vm.hostUuid) return; // already holds one (a retried step)
      // where it last ran (placing it overwrites that): its old definition is dropped there
      ctx.data.previousHost = vm.lastHostUuid;
      const root = vm.rootVolumeUuid
        ? await ctx.db
            .selectFrom('volumes as v')
            .innerJoin('primaryStorages as p', 'p.uuid', 'v.primaryStorageUuid')
            .select(['v.primaryStorageUuid', 'v.hostUuid', 'p.type'])
            .where('v.uuid', '=', vm.rootVolumeUuid)
            .executeTakeFirst()
        : undefined;
      if (!root) throw new CloudError('Conflict', 'VM_ROOT_VOLUME_GONE', `vm ${vm.uuid} has no root volume`);
      // the platform may ask for a host (a restart in place) or rule some out (a VM moved off a
      // host that failed it: self-service/health/); local disks decide the host whatever it asks
      const p = ctx.params as StartParams;
      const hints =
        root.type === 'local' && root.hostUuid
          ? { hostUuid: root.hostUuid, primaryStorageUuid: root.primaryStorageUuid! }
          : { primaryStorageUuid: root.primaryStorageUuid!, ...(p.hostUuid ? { hostUuid: p.hostUuid } : {}) };
      // its NICs' L2s must be on the host's cluster
      const l2s = await ctx.db
        .selectFrom('vmNics')
        .select('l2NetworkUuid')
        .distinct()
        .where('vmUuid', '=', vm.uuid)
        .execute();
      // the disks exist already: the placement needs CPU and memory, and a host reaching them
      await place(ctx.db, rt.snapshot, ctx.deps.settings, {
        vm,
        request: {
          cpu: vm.cpu,
          memory: vm.memory,
          rootDiskSize: 0,
          image: {
            uuid: vm.imageUuid ?? vm.uuid,
            platform: vm.platform ?? 'Linux',
            format: 'qcow2',
            size: 0,
          },
          hints,
          l2NetworkUuids: l2s.map((l) => l.l2NetworkUuid),
          ...(p.excludeHosts ? { excludeHosts: p.excludeHosts } : {}),
        },
        strategy: null,
        slot: 'host',
      });
    },
    async rollback(ctx) {
      const vm = await vmRow(ctx.db, ctx.params.uuid);
      const host = await releaseHost(ctx.db, vm.uuid, 'host');
      if (host) rt.snapshot.onHostCapacity(host, vm.cpu, vm.memory, -1);
    },
  };
}

export function vmStartFlow(rt: VmRuntime): FlowDef<VmOpParams, FlowDeps> {
  return {
    kind: 'vm.start',
    recovery: 'rollback',
    steps: [
      admitStep('start'),
      allocateForStart(rt),
      // its NICs go where it starts; undone: on no host (a Stopped VM's NICs are on none)
      nicsStep({
        name: 'apply-network-services',
        describe: 'configure the network of the host and routers for the vm',
        to: (vm) => vm.hostUuid,
        back: () => null,
      }),
      hostStep(
        rt,
        'start-on-host',
        'start the vm on its host',
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.start', {
            vm: await startSpec(ctx.db, vm),
          });
          const previous = (ctx.data.previousHost as string | null | undefined) ?? null;
          await dropStaleDefinition(rt, ctx, { uuid: vm.uuid, lastHostUuid: previous }, vm.hostUuid);
        },
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.stop', { vmUuid: vm.uuid, force: true });
        },
      ),
      mark('mark-running', 'Running', 'Running', 'start'),
    ],
    result,
  };
}

/** Graceful stop, powered off when it does not finish within the stop timeout (or at once with force). */
async function stopOnHost(
  ctx: VmCtx<VmOpParams & { force?: boolean }>,
  host: Parameters<FlowDeps['drivers']['send']>[0],
  vmUuid: string,
) {
  if (!ctx.params.force) {
    const graceful = ctx.deps.drivers.send(host, 'vm.stop', { vmUuid, force: false });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      graceful.then(
        () => 'stopped' as const,
        () => 'failed' as const,
      ),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), ctx.deps.settings.stopTimeoutSeconds * 1000);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'stopped') {
      ctx.data.stoppedBy = 'shutdown';
      return;
    }
  }
  await ctx.deps.drivers.send(host, 'vm.stop', { vmUuid, force: true });
  ctx.data.stoppedBy = 'power-off';
}

export function vmStopFlow(rt: VmRuntime): FlowDef<VmOpParams & { force?: boolean }, FlowDeps> {
  return {
    kind: 'vm.stop',
    recovery: 'rollback',
    steps: [
      admitStep('stop'),
      {
        name: 'stop-on-host',
        describe: 'shut the vm down (power off after the stop timeout)',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          if (!vm.hostUuid) return; // an Error VM on no host: nothing runs anywhere
          await stopOnHost(ctx, await hostAddress(rt, ctx.db, vm.hostUuid), vm.uuid);
        },
        rollback: (ctx) => restartOnHost(rt, ctx),
      },
      // the NICs leave the host with it; undone: back on the host it still holds
      leaveHostNetworkStep(),
      {
        name: 'mark-stopped',
        describe: 'mark the vm Stopped and give its host capacity back',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          let released: string | undefined;
          await finishOperation(
            ctx,
            'stop',
            { state: 'Stopped', powerState: 'Stopped' },
            async (tx) => {
              released = await releaseHost(tx, vm.uuid, 'host');
            },
            { stoppedBy: ctx.data.stoppedBy ?? 'nothing ran' },
          );
          if (released) rt.snapshot.onHostCapacity(released, vm.cpu, vm.memory, -1);
        },
      },
    ],
    result: vmResult,
  };
}

export function vmRebootFlow(rt: VmRuntime): FlowDef<VmOpParams, FlowDeps> {
  return {
    kind: 'vm.reboot',
    recovery: 'rollback',
    steps: [
      admitStep('reboot'),
      hostStep(rt, 'reboot-on-host', 'reboot the vm', async (ctx, { vm, host }) => {
        await ctx.deps.drivers.send(host, 'vm.reboot', { vmUuid: vm.uuid });
      }),
      mark('mark-running', 'Running', 'Running', 'reboot'),
    ],
    result,
  };
}

export function vmPauseFlow(rt: VmRuntime): FlowDef<VmOpParams, FlowDeps> {
  return {
    kind: 'vm.pause',
    recovery: 'rollback',
    steps: [
      admitStep('pause'),
      hostStep(
        rt,
        'pause-on-host',
        'pause the vm',
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.pause', { vmUuid: vm.uuid });
        },
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.resume', { vmUuid: vm.uuid });
        },
      ),
      mark('mark-paused', 'Paused', 'Paused', 'pause'),
    ],
    result,
  };
}

export function vmResumeFlow(rt: VmRuntime): FlowDef<VmOpParams, FlowDeps> {
  return {
    kind: 'vm.resume',
    recovery: 'rollback',
    steps: [
      admitStep('resume'),
      hostStep(
        rt,
        'resume-on-host',
        'resume the vm',
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.resume', { vmUuid: vm.uuid });
        },
        async (ctx, { vm, host }) => {
          await ctx.deps.drivers.send(host, 'vm.pause', { vmUuid: vm.uuid });
        },
      ),
      mark('mark-running', 'Running', 'Running', 'resume'),
    ],
    result,
  };
}

export interface ChangeOfferingParams extends VmOpParams {
  cpu: number;
  memory: number;
  instanceOfferingUuid: string | null;
  oldCpu: number;
  oldMemory: number;
}

/** Quota the new size needs beyond the old one (reserved at admission) or frees (released at the end). */
export function quotaDelta(
  p: Pick<ChangeOfferingParams, 'cpu' | 'memory' | 'oldCpu' | 'oldMemory'>,
  sign: 1 | -1,
) {
  return {
    'vm.cpu': Math.max(0, sign * (p.cpu - p.oldCpu)),
    'vm.memory': Math.max(0, sign * (p.memory - p.oldMemory)),
  };
}

export const vmChangeOfferingFlow: FlowDef<ChangeOfferingParams, FlowDeps> = {
  kind: 'vm.change-offering',
  recovery: 'rollback',
  steps: [
    // the increase reserved with the admission goes back with it
    admitStep<ChangeOfferingParams>('change-offering', async (ctx, tx) =>
      releaseQuota(tx, await accountOf(tx, ctx.job.accountUuid), quotaDelta(ctx.params, 1)),
    ),
    {
      name: 'apply',
      describe: 'set the new cpu and memory',
      async run(ctx) {
        const p = ctx.params;
        const account = await accountOf(ctx.db, ctx.job.accountUuid);
        // a Stopped VM holds no host capacity, so only the row and the quota change
        await finishOperation(
          ctx,
          'change-offering',
          { cpu: p.cpu, memory: p.memory, instanceOfferingUuid: p.instanceOfferingUuid },
          (tx) => releaseQuota(tx, account, quotaDelta(p, -1)),
        );
      },
    },
  ],
  result: vmResult,
};
