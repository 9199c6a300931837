/**
 * Live migration of a Running VM to another host of its cluster. Only VMs whose volumes are all
 * on shared storage can move (a local disk is bound to its host; refused at admission).
 *
 *   admit          Running → Migrating
 *   allocate-target the scheduler (source excluded, same cluster, reaching the root volume's
 *                  storage) and a reservation on the target, held in `migration_target_uuid`
 *                  while the VM still holds its source; rollback releases the target
 *   prepare-target-network the target re-synced: the NICs of a VM migrating to a host count as
 *                  its own (host-sync.ts), so its bridges, DHCP entries and rules exist there
 *                  before QEMU's incoming side plugs the taps (allocate-target's rollback
 *                  re-syncs the target once it no longer counts them)
 *   migrate-on-host vm.migrate on the source; rollback moves it back if it reached the target
 *   move-network-services its NICs to the target, both hosts and its routers re-synced;
 *                  rollback moves them back to the source
 *   mark-running   in one transaction: the claim moves to the target, the source is released
 */
import type { FlowDef } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import type { FlowDeps } from '../../service.js';
import { releaseHost, switchToTarget } from './host-capacity.js';
import type { VmOpParams, VmRow } from './model.js';
import { nicsStep } from './network-steps.js';
import { admitStep } from './operations.js';
import { place } from './placement.js';
import { hostAddress, type VmCtx, type VmRuntime } from './runtime.js';
import { finishOperation, vmResult, vmRow } from './transitions.js';

export interface MigrateParams extends VmOpParams {
  hostUuid?: string;
}

/** Why a VM cannot live-migrate, checked at admission; undefined when it can. */
export async function migrationRefusal(
  db: VmCtx<unknown>['db'],
  vm: VmRow,
  target?: string,
): Promise<CloudError | undefined> {
  const local = await db
    .selectFrom('volumes as v')
    .innerJoin('primaryStorages as p', 'p.uuid', 'v.primaryStorageUuid')
    .select(['v.uuid'])
    .where('v.vmUuid', '=', vm.uuid)
    .where('p.type', '=', 'local')
    .executeTakeFirst();
  if (local) {
    return new CloudError(
      'Conflict',
      'VM_ON_LOCAL_STORAGE',
      `vm ${vm.uuid} cannot live-migrate: volume ${local.uuid} is on local storage, bound to its host`,
      { details: { volumeUuid: local.uuid } },
    );
  }
  if (target === undefined) return undefined;
  const host = await db
    .selectFrom('hosts')
    .select(['uuid', 'clusterUuid'])
    .where('uuid', '=', target)
    .executeTakeFirst();
  if (!host) return new CloudError('Invalid', 'HOST_NOT_FOUND', `host ${target} not found`);
  if (host.uuid === vm.hostUuid)
    return new CloudError('Invalid', 'VM_ALREADY_ON_HOST', `vm ${vm.uuid} already runs on host ${target}`);
  if (host.clusterUuid !== vm.clusterUuid) {
    return new CloudError(
      'Invalid',
      'HOST_IN_OTHER_CLUSTER',
      `host ${target} is in cluster ${host.clusterUuid}; vm ${vm.uuid} can move only within cluster ${vm.clusterUuid}`,
    );
  }
  return undefined;
}

export function vmMigrateFlow(rt: VmRuntime): FlowDef<MigrateParams, FlowDeps> {
  const target = (ctx: VmCtx<MigrateParams>) => {
    const t = ctx.data.target as string | undefined;
    if (!t) throw new CloudError('Internal', 'VM_NO_TARGET', 'the migration lost its target');
    return t;
  };
  return {
    kind: 'vm.migrate',
    recovery: 'rollback',
    steps: [
      admitStep('migrate'),
      {
        name: 'allocate-target',
        describe: 'choose a target host and reserve its CPU and memory',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          const root = await ctx.db
            .selectFrom('volumes')
            .select('primaryStorageUuid')
            .where('uuid', '=', vm.rootVolumeUuid ?? vm.uuid)
            .executeTakeFirst();
          const placement = await place(ctx.db, rt.snapshot, ctx.deps.settings, {
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
              hints: {
                ...(vm.clusterUuid ? { clusterUuid: vm.clusterUuid } : {}),
                ...(ctx.params.hostUuid ? { hostUuid: ctx.params.hostUuid } : {}),
                ...(root?.primaryStorageUuid ? { primaryStorageUuid: root.primaryStorageUuid } : {}),
              },
              excludeHosts: vm.hostUuid ? [vm.hostUuid] : [],
              requiresSharedStorage: true,
            },
            strategy: null,
            slot: 'target',
          });
          ctx.data.target = placement.hostUuid;
        },
        async rollback(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          const host = await releaseHost(ctx.db, vm.uuid, 'target');
          if (host) rt.snapshot.onHostCapacity(host, vm.cpu, vm.memory, -1);
          // what prepare-target-network put there goes (a dead target re-syncs on reconnect)
          const to = host ?? (ctx.data.target as string | undefined);
          if (to) await ctx.deps.network.sync([to], { bestEffort: true });
        },
      },
      {
        name: 'prepare-target-network',
        describe: 'make the vm’s bridges and rules on the target host',
        async run(ctx) {
          await ctx.deps.network.sync([target(ctx)]);
        },
      },
      {
        name: 'migrate-on-host',
        describe: 'move the running vm to the target host',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          const [source, dest] = await Promise.all([
            hostAddress(rt, ctx.db, vm.hostUuid!),
            hostAddress(rt, ctx.db, target(ctx)),
          ]);
          await ctx.deps.drivers.send(source, 'vm.migrate', { vmUuid: vm.uuid, target: dest.managementIp });
        },
        async rollback(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          const to = ctx.data.target as string | undefined;
          if (!to || !vm.hostUuid) return;
          const [source, dest] = await Promise.all([
            hostAddress(rt, ctx.db, vm.hostUuid),
            hostAddress(rt, ctx.db, to),
          ]);
          // move it back only if it got there (the failure may have come before the move)
          const there = await ctx.deps.drivers.send(dest, 'vm.list', {});
          if (there.vms.some((v) => v.uuid === vm.uuid))
            await ctx.deps.drivers.send(dest, 'vm.migrate', { vmUuid: vm.uuid, target: source.managementIp });
        },
      },
      // its NICs follow it to the target; undone: back on the source (which it still holds)
      nicsStep<MigrateParams>({
        name: 'move-network-services',
        describe: 'move the vm’s network to the target host',
        to: (_vm, ctx) => target(ctx),
        back: (vm) => vm.hostUuid,
        alsoLeaving: (_vm, ctx) => (ctx.data.target ? [ctx.data.target as string] : []),
      }),
      {
        name: 'mark-running',
        describe: 'switch the vm to its new host and release the old one',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          let moved: { from: string; to: string } | undefined;
          await finishOperation(ctx, 'migrate', { state: 'Running', powerState: 'Running' }, async (tx) => {
            moved = await switchToTarget(tx, vm.uuid);
          });
          if (moved) rt.snapshot.onHostCapacity(moved.from, vm.cpu, vm.memory, -1);
        },
      },
    ],
    result: (ctx) => vmResult(ctx),
  };
}
