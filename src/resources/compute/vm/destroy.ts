/**
 * Destroy (soft, recoverable), recover and expunge — ZStack's Delay deletion policy.
 *
 * destroy  admit (→ Destroying) → destroy-on-host (vm.destroy; rollback starts it again) →
 *          release-network-services (its NICs off the host, re-synced; they keep their addresses) →
 *          detach-data-volumes (those not deleted with the VM outlive it; rollback re-attaches)
 *          → mark-destroyed (Destroyed, destroyed_at, host capacity given back, one transaction).
 *          An Unknown VM whose host does not answer is destroyed anyway (the host may be gone for
 *          good); should the host come back running it, the reconciler destroys the stray.
 * recover  Destroyed → Stopped (it holds no host: a start places it again).
 * expunge  admit (→ Expunging) → destroy-volumes (root and data volumes deleted with the VM; cannot be undone, so no rollback: a failure leaves
 *          the VM Destroyed with fewer volumes, and expunging again finishes) → release-nics (NICs
 *          and addresses deleted, routers re-synced) → delete-record (the
 *          row, its tags and the VM's own quota, one transaction). Recovery: resume.
 *          Each volume's row, capacity and quota go in one transaction (volume/provision.ts).
 */
import type { FlowDef } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { resourceEvent } from '../../common.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { deleteOnStorage, removeVolumeRecord } from '../../storage/volume/provision.js';
import { peerHosts, removeNics, syncNetwork } from '../vm-nic/nics.js';
import { releaseHost } from './host-capacity.js';
import { type VmOpParams, vmFamily, vmQuota } from './model.js';
import { leaveHostNetworkStep } from './network-steps.js';
import { admitStep } from './operations.js';
import { dropStaleDefinition, hostAddress, restartOnHost, type VmRuntime } from './runtime.js';
import { finishOperation, vmResult, vmRow } from './transitions.js';

const UNREACHABLE = 'HOST_UNREACHABLE';

export function vmDestroyFlow(rt: VmRuntime): FlowDef<VmOpParams, FlowDeps> {
  return {
    kind: 'vm.destroy',
    recovery: 'rollback',
    steps: [
      admitStep('destroy'),
      {
        name: 'destroy-on-host',
        describe: 'remove the vm from its host',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          if (!vm.hostUuid) {
            await dropStaleDefinition(rt, ctx, vm, null);
            return;
          }
          try {
            await ctx.deps.drivers.send(await hostAddress(rt, ctx.db, vm.hostUuid), 'vm.destroy', {
              vmUuid: vm.uuid,
            });
          } catch (err) {
            if (ctx.params.fromState !== 'Unknown' || (err as CloudError).code !== UNREACHABLE) throw err;
            ctx.data.hostUnreachable = true;
          }
        },
        rollback: (ctx) => restartOnHost(rt, ctx),
      },
      // its NICs leave the host (they and their addresses stay: recover gives them back)
      leaveHostNetworkStep(),
      {
        // a step of its own, so the list is journaled BEFORE the volumes are detached: a node
        // dying right after the detach leaves a journal whose rollback knows what to re-attach
        name: 'list-data-volumes',
        describe: 'list the data volumes that outlive the vm',
        async run(ctx) {
          ctx.data.detached = await ctx.db
            .selectFrom('volumes')
            .select(['uuid', 'deviceId'])
            .where('vmUuid', '=', ctx.params.uuid)
            .where('type', '=', 'Data')
            .where('deleteWithVm', '=', false)
            .execute();
        },
      },
      {
        name: 'detach-data-volumes',
        describe: 'detach the data volumes that outlive the vm',
        async run(ctx) {
          const outliving = (ctx.data.detached as Array<{ uuid: string }> | undefined) ?? [];
          if (outliving.length === 0) return;
          await ctx.db
            .updateTable('volumes')
            .set({ vmUuid: null, deviceId: null, updatedAt: new Date() })
            .where(
              'uuid',
              'in',
              outliving.map((v) => v.uuid),
            )
            .where('vmUuid', '=', ctx.params.uuid)
            .execute();
        },
        async rollback(ctx) {
          for (const v of (ctx.data.detached as
            | Array<{ uuid: string; deviceId: number | null }>
            | undefined) ?? []) {
            await ctx.db
              .updateTable('volumes')
              .set({ vmUuid: ctx.params.uuid, deviceId: v.deviceId, updatedAt: new Date() })
              .where('uuid', '=', v.uuid)
              .where('vmUuid', 'is', null)
              .execute();
          }
        },
      },
      {
        name: 'mark-destroyed',
        describe: 'mark the vm Destroyed and give its host capacity back',
        async run(ctx) {
          const vm = await vmRow(ctx.db, ctx.params.uuid);
          let released: string | undefined;
          await finishOperation(
            ctx,
            'destroy',
            { state: 'Destroyed', powerState: 'Stopped', destroyedAt: new Date() },
            async (tx) => {
              released = await releaseHost(tx, vm.uuid, 'host');
            },
          );
          if (released) rt.snapshot.onHostCapacity(released, vm.cpu, vm.memory, -1);
        },
      },
    ],
    result: (ctx) => vmResult(ctx),
  };
}

export const vmRecoverFlow: FlowDef<VmOpParams, FlowDeps> = {
  kind: 'vm.recover',
  recovery: 'rollback',
  steps: [
    admitStep('recover'),
    {
      name: 'mark-stopped',
      describe: 'mark the vm Stopped',
      async run(ctx) {
        await finishOperation(ctx, 'recover', { state: 'Stopped', powerState: 'Stopped', destroyedAt: null });
      },
    },
  ],
  result: (ctx) => vmResult(ctx),
};

export const vmExpungeFlow: FlowDef<VmOpParams, FlowDeps> = {
  kind: 'vm.expunge',
  recovery: 'resume',
  steps: [
    admitStep('expunge'),
    {
      name: 'destroy-volumes',
      describe: 'delete the root volume and the data volumes deleted with the vm',
      async run(ctx) {
        const volumes = await ctx.db
          .selectFrom('volumes')
          .selectAll()
          .where('vmUuid', '=', ctx.params.uuid)
          .where('deleteWithVm', '=', true)
          .execute();
        for (const v of volumes) {
          await deleteOnStorage(ctx.db, ctx.deps.drivers, v);
          // the row, its capacity and its quota go together (whoever expunges releases)
          await removeVolumeRecord(ctx.db, v.uuid, { releaseVolumeQuota: true });
        }
      },
    },
    {
      name: 'release-nics',
      describe: 'delete the NICs and release their addresses',
      async run(ctx) {
        const nics = await ctx.db
          .selectFrom('vmNics')
          .select('uuid')
          .where('vmUuid', '=', ctx.params.uuid)
          .execute();
        // read before the memberships go: the groups' other members lose these addresses
        const peers =
          nics.length > 0
            ? await peerHosts(
                ctx.db,
                nics.map((n) => n.uuid),
              )
            : [];
        const gone = await removeNics(ctx.db, { vmUuid: ctx.params.uuid });
        // routers serving them drop their DHCP entries (a Destroyed VM's NICs are on no host)
        await syncNetwork(ctx.db, ctx.deps, { leaving: [...gone.hostUuids, ...peers], routed: gone.routed });
      },
    },
    {
      name: 'delete-record',
      describe: 'remove the vm and give its quota back',
      async run(ctx) {
        const account = await accountOf(ctx.db, ctx.job.accountUuid);
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const row = await tx
            .deleteFrom('vms')
            .where('uuid', '=', ctx.params.uuid)
            .where('task', '=', 'expunge')
            .returning(['uuid', 'accountUuid', 'cpu', 'memory', 'hostUuid'])
            .executeTakeFirst();
          if (!row) return;
          if (row.hostUuid)
            throw new CloudError('Internal', 'VM_HOLDS_HOST', `vm ${row.uuid} still holds a host`);
          await releaseQuota(tx, account, vmQuota(row.cpu, row.memory));
          await tx.deleteFrom('tags').where('resourceUuid', '=', row.uuid).execute();
          batch.add({
            ...resourceEvent(vmFamily, row, 'deleted', { reason: 'expunged' }),
            jobUuid: ctx.job.uuid,
          });
        });
      },
    },
  ],
};
