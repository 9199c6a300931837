/**
 * The volume chains. Each VM-touching chain starts with the VM held since admission (claim-vm)
 * and ends by releasing it; capacity and quota move only in transactions that also move the row.
 *
 *   create:       create-record → claim-vm → create-on-storage → attach-device → hot-plug → release-vm
 *   attach:       claim-vm → attach-device → hot-plug → release-vm
 *   detach:       claim-vm → unplug → detach-device → release-vm
 *   delete:       claim-vm → unplug → detach-device → release-vm → mark-deleted   (soft; VM steps only if attached)
 *   resize:       reserve (quota + capacity + size, one transaction) → resize-on-storage
 *   recover:      apply (Deleted → Ready)
 *   expunge:      mark-expunging → delete-on-storage → remove-record
 *   create-image: record-image → claim-vm → upload → mark-ready → release-vm
 */
import type { FlowDef, FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { changeFlow, resourceEvent } from '../../common.js';
import { accountOf, releaseQuota, reserveQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { releaseStorage, reserveStorage, storageRef } from '../primary-storage/capacity.js';
import { type ImageParams, imageRow, markImageReadyStep, recordImageStep, uploadImageStep } from './image.js';
import { volumeFamily as family, presentVolume, volumeGone } from './model.js';
import { storageHost } from './placement.js';
import { deleteOnStorage, provisionVolume, removeVolumeRecord } from './provision.js';
import {
  attachDeviceStep,
  type Ctx,
  claimVmStep,
  detachDeviceStep,
  hotPlugStep,
  releaseVmStep,
  unplugStep,
  volumeOf,
} from './steps.js';

export interface VmParams {
  vmUuid: string | null;
  deviceId?: number | null;
}
export interface ResizeParams {
  size: number;
}

const vmOf = (ctx: Ctx<VmParams>) => ctx.params.vmUuid;
const result = async (ctx: Ctx<unknown>) => {
  const row = await ctx.db
    .selectFrom('volumes')
    .selectAll()
    .where('uuid', '=', ctx.job.resourceUuid!)
    .executeTakeFirst();
  return row ? presentVolume(row) : null;
};

/** Done at admission (row, capacity and quota in one transaction); the rollback gives all three back. */
const createRecord: FlowStep<VmParams, FlowDeps> = {
  name: 'create-record',
  describe: 'record the volume',
  async run() {},
  async rollback(ctx) {
    const gone = await removeVolumeRecord(ctx.db, ctx.job.resourceUuid!, { releaseVolumeQuota: true });
    if (gone) await ctx.emit([resourceEvent(family, gone, 'deleted', { reason: 'rolled back' })]);
  },
};

const createOnStorage: FlowStep<VmParams, FlowDeps> = {
  name: 'create-on-storage',
  describe: 'create the volume on its storage',
  async run(ctx) {
    const v = await volumeOf(ctx);
    const host = await storageHost(ctx.db, { ...v, vmUuid: null });
    await provisionVolume(ctx.db, ctx.deps.drivers, {
      uuid: v.uuid,
      name: v.name,
      accountUuid: v.accountUuid,
      type: v.type,
      size: v.size,
      format: v.format,
      primaryStorageUuid: v.primaryStorageUuid!,
      hostUuid: v.hostUuid,
      host,
      vmUuid: v.vmUuid,
      deviceId: v.deviceId,
      diskOfferingUuid: v.diskOfferingUuid,
      imageUuid: v.imageUuid,
      deleteWithVm: v.deleteWithVm,
    });
  },
  async rollback(ctx) {
    const v = await ctx.db
      .selectFrom('volumes')
      .selectAll()
      .where('uuid', '=', ctx.job.resourceUuid!)
      .executeTakeFirst();
    if (v) await deleteOnStorage(ctx.db, ctx.deps.drivers, v);
  },
};

export const volumeCreateFlow: FlowDef<VmParams, FlowDeps> = {
  kind: 'volume.create',
  recovery: 'rollback',
  steps: [
    createRecord,
    claimVmStep('attach-volume', vmOf),
    createOnStorage,
    attachDeviceStep(vmOf),
    hotPlugStep(vmOf),
    releaseVmStep('attach-volume', vmOf),
  ],
  result,
};

export const volumeAttachFlow: FlowDef<VmParams, FlowDeps> = {
  kind: 'volume.attach',
  recovery: 'rollback',
  steps: [
    claimVmStep('attach-volume', vmOf),
    attachDeviceStep(vmOf),
    hotPlugStep(vmOf),
    releaseVmStep('attach-volume', vmOf),
  ],
  result,
};

export const volumeDetachFlow: FlowDef<VmParams, FlowDeps> = {
  kind: 'volume.detach',
  recovery: 'rollback',
  steps: [
    claimVmStep('detach-volume', vmOf),
    unplugStep(vmOf),
    detachDeviceStep(vmOf),
    releaseVmStep('detach-volume', vmOf),
  ],
  result,
};

async function setState(
  ctx: Ctx<unknown>,
  from: string,
  to: string,
  extra: { deletedAt?: Date | null; detachedOnly?: boolean },
  event: string,
): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    let q = tx
      .updateTable('volumes')
      .set({
        state: to,
        updatedAt: new Date(),
        ...(extra.deletedAt !== undefined ? { deletedAt: extra.deletedAt } : {}),
      })
      .where('uuid', '=', ctx.job.resourceUuid!)
      .where('state', '=', from);
    if (extra.detachedOnly) q = q.where('vmUuid', 'is', null);
    const row = await q.returningAll().executeTakeFirst();
    if (row) batch.add({ ...resourceEvent(family, row, event, { state: to }), jobUuid: ctx.job.uuid });
    return row !== undefined;
  });
}

const markDeleted: FlowStep<VmParams, FlowDeps> = {
  name: 'mark-deleted',
  describe: 'mark the volume Deleted',
  async run(ctx) {
    if (await setState(ctx, 'Ready', 'Deleted', { deletedAt: new Date(), detachedOnly: true }, 'deleted'))
      return;
    const v = await volumeOf(ctx);
    ctx.data.refused = true;
    throw new CloudError(
      'Conflict',
      'VOLUME_CHANGED',
      `volume ${v.uuid} changed while waiting: it is ${v.state}${v.vmUuid ? `, attached to vm ${v.vmUuid}` : ''}`,
      { details: { state: v.state, vmUuid: v.vmUuid } },
    );
  },
  async rollback(ctx) {
    if (ctx.data.refused) return;
    await setState(ctx, 'Deleted', 'Ready', { deletedAt: null }, 'recovered');
  },
};

export const volumeDeleteFlow: FlowDef<VmParams, FlowDeps> = {
  kind: 'volume.delete',
  recovery: 'rollback',
  steps: [
    claimVmStep('detach-volume', vmOf),
    unplugStep(vmOf),
    detachDeviceStep(vmOf),
    releaseVmStep('detach-volume', vmOf),
    markDeleted,
  ],
  result,
};

export const volumeRecoverFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'volume.recover',
  recovery: 'resume',
  steps: [
    {
      name: 'apply',
      describe: 'mark the volume Ready',
      async run(ctx) {
        if (await setState(ctx, 'Deleted', 'Ready', { deletedAt: null }, 'recovered')) {
          ctx.data.recovered = true;
          return;
        }
        const v = await volumeOf(ctx);
        if (v.state !== 'Ready') {
          throw new CloudError(
            'Conflict',
            'VOLUME_INVALID_STATE',
            `volume ${v.uuid} is ${v.state}; recover needs Deleted`,
            {
              details: { state: v.state },
            },
          );
        }
      },
      async rollback(ctx) {
        if (ctx.data.recovered) await setState(ctx, 'Ready', 'Deleted', { deletedAt: new Date() }, 'deleted');
      },
    },
  ],
  result,
};

export const volumeExpungeFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'volume.expunge',
  recovery: 'resume',
  steps: [
    {
      name: 'mark-expunging',
      describe: 'mark the volume Expunging',
      async run(ctx) {
        if (await setState(ctx, 'Deleted', 'Expunging', {}, 'state.changed')) return;
        const v = await ctx.db
          .selectFrom('volumes')
          .select(['state'])
          .where('uuid', '=', ctx.job.resourceUuid!)
          .executeTakeFirst();
        if (v && v.state !== 'Expunging') {
          ctx.data.refused = true;
          throw new CloudError(
            'Conflict',
            'VOLUME_INVALID_STATE',
            `volume ${ctx.job.resourceUuid} is ${v.state}; expunge needs Deleted`,
            {
              details: { state: v.state },
            },
          );
        }
      },
      async rollback(ctx) {
        if (!ctx.data.refused) await setState(ctx, 'Expunging', 'Deleted', {}, 'state.changed');
      },
    },
    {
      name: 'delete-on-storage',
      describe: 'delete the volume and its snapshots on the storage',
      async run(ctx) {
        const v = await ctx.db
          .selectFrom('volumes')
          .selectAll()
          .where('uuid', '=', ctx.job.resourceUuid!)
          .executeTakeFirst();
        if (v) await deleteOnStorage(ctx.db, ctx.deps.drivers, v);
      },
    },
    {
      name: 'remove-record',
      describe: 'remove the volume, give its capacity and quota back',
      async run(ctx) {
        const gone = await removeVolumeRecord(ctx.db, ctx.job.resourceUuid!, { releaseVolumeQuota: true });
        if (gone) await ctx.emit([resourceEvent(family, gone, 'expunged')]);
      },
    },
  ],
};

/** Quota, capacity and the recorded size change together; the storage grows the disk after. */
const reserveGrowth: FlowStep<ResizeParams, FlowDeps> = {
  name: 'reserve',
  describe: 'reserve the added size (quota and capacity)',
  async run(ctx) {
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const v = await tx
        .selectFrom('volumes')
        .selectAll()
        .where('uuid', '=', ctx.job.resourceUuid!)
        .forUpdate()
        .executeTakeFirst();
      if (!v) throw volumeGone(ctx.job.resourceUuid!);
      const delta = ctx.params.size - v.size;
      if (v.state !== 'Ready' || delta <= 0 || !v.primaryStorageUuid) {
        throw new CloudError(
          'Conflict',
          'VOLUME_CHANGED',
          `volume ${v.uuid} changed while waiting: it is ${v.state}, ${v.size} bytes`,
          {
            details: { state: v.state, size: v.size },
          },
        );
      }
      await reserveQuota(tx, await accountOf(tx, v.accountUuid), { 'volume.capacity': delta });
      if (
        !(await reserveStorage(tx, { primaryStorageUuid: v.primaryStorageUuid, hostUuid: v.hostUuid }, delta))
      ) {
        throw new CloudError(
          'Conflict',
          'PRIMARY_STORAGE_FULL',
          `primary storage ${v.primaryStorageUuid} has no room for ${delta} more bytes`,
          {
            details: { primaryStorageUuid: v.primaryStorageUuid, hostUuid: v.hostUuid, requested: delta },
          },
        );
      }
      await tx
        .updateTable('volumes')
        .set({ size: ctx.params.size, updatedAt: new Date() })
        .where('uuid', '=', v.uuid)
        .execute();
      batch.add({
        ...resourceEvent(family, v, 'resized', { from: v.size, to: ctx.params.size }),
        jobUuid: ctx.job.uuid,
      });
      ctx.data.from = v.size;
    });
  },
  async rollback(ctx) {
    const from = ctx.data.from as number | undefined;
    if (from === undefined) return;
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const v = await tx
        .updateTable('volumes')
        .set({ size: from, updatedAt: new Date() })
        .where('uuid', '=', ctx.job.resourceUuid!)
        .where('size', '=', ctx.params.size)
        .returningAll()
        .executeTakeFirst();
      if (!v?.primaryStorageUuid) return;
      const delta = ctx.params.size - from;
      await releaseQuota(tx, await accountOf(tx, v.accountUuid), { 'volume.capacity': delta });
      await releaseStorage(tx, { primaryStorageUuid: v.primaryStorageUuid, hostUuid: v.hostUuid }, delta);
      batch.add({
        ...resourceEvent(family, v, 'resized', { from: ctx.params.size, to: from, reason: 'rolled back' }),
        jobUuid: ctx.job.uuid,
      });
    });
  },
};

export const volumeResizeFlow: FlowDef<ResizeParams, FlowDeps> = {
  kind: 'volume.resize',
  recovery: 'rollback',
  steps: [
    reserveGrowth,
    {
      name: 'resize-on-storage',
      describe: 'grow the disk on its storage',
      async run(ctx) {
        const v = await volumeOf(ctx);
        const host = await storageHost(ctx.db, v);
        const storage = await storageRef(ctx.db, v.primaryStorageUuid!);
        await ctx.deps.drivers.send(host, 'volume.resize', {
          volumeUuid: v.uuid,
          size: ctx.params.size,
          storage,
        });
      },
    },
    {
      name: 'resize-on-vm',
      describe: 'tell the running VM its disk grew',
      // a running guest sees the new size only when the hypervisor is told (QEMU block_resize);
      // a stopped VM reads it at its next start. Growing twice is harmless: nothing to undo.
      async run(ctx) {
        const v = await volumeOf(ctx);
        if (!v.vmUuid) return;
        const vm = await ctx.db
          .selectFrom('vms as m')
          .innerJoin('hosts as h', 'h.uuid', 'm.hostUuid')
          .select(['m.uuid', 'm.state', 'h.uuid as hostUuid', 'h.managementIp', 'h.hypervisorType'])
          .where('m.uuid', '=', v.vmUuid)
          .executeTakeFirst();
        if (!vm || !['Running', 'Paused'].includes(vm.state)) return;
        await ctx.deps.drivers.send(
          { uuid: vm.hostUuid, managementIp: vm.managementIp, hypervisorType: vm.hypervisorType },
          'vm.resize-volume',
          { vmUuid: vm.uuid, volumeUuid: v.uuid, size: ctx.params.size },
        );
      },
    },
  ],
  result,
};

const imageVm = (ctx: Ctx<ImageParams & VmParams>) => ctx.params.vmUuid;

export const volumeImageFlow: FlowDef<ImageParams & VmParams, FlowDeps> = {
  kind: 'volume.create-image',
  recovery: 'rollback',
  steps: [
    recordImageStep(),
    claimVmStep('create-image', imageVm),
    uploadImageStep(async (ctx) => {
      const volume = await volumeOf(ctx);
      return { volume, path: volume.path ?? '' };
    }),
    markImageReadyStep(),
    releaseVmStep('create-image', imageVm),
  ],
  result: (ctx) => imageRow(ctx.db, ctx.params.imageUuid),
};

export const volumeUpdateFlow = changeFlow(family, 'volume.update', 'updated');

export const VOLUME_FLOWS = [
  volumeCreateFlow,
  volumeAttachFlow,
  volumeDetachFlow,
  volumeDeleteFlow,
  volumeRecoverFlow,
  volumeExpungeFlow,
  volumeResizeFlow,
  volumeImageFlow,
  volumeUpdateFlow,
] as FlowDef<never, FlowDeps>[];
