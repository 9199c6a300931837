/**
 * Rebuild: a Stopped VM gets a fresh root disk cloned from its image, on the storage (and, for
 * local storage, the host share) of the old one; the old disk and its snapshots go. The VM keeps
 * its uuid, name, NICs, addresses and data volumes. It stays Stopped: a start follows when wanted
 * (the pool health scanner does both, self-service/health/). `POST /v1/vms/{uuid}/actions/rebuild`.
 *
 *   admit             Stopped, task rebuild (state kept)
 *   new-root-volume   the image cached on the old disk's storage, a new volume cloned from it
 *                     (attached to nothing yet); rollback destroys it (and a cache entry it made)
 *   swap-root         in one transaction: the old disk detached, the new one the VM's root
 *                     (device 0); rollback swaps back while the old disk exists
 *   destroy-old-root  the old disk deleted on its storage and its row removed (no undo: once it
 *                     is gone the rollbacks keep the new disk, and a chain failing after this
 *                     step leaves the VM Stopped on its new disk — only mark-rebuilt, a write
 *                     to this database, comes after it)
 *   mark-rebuilt      task cleared, a vm.state.changed event naming the new root volume
 * The holder's quota does not change: the new disk has the old one's size and account.
 */
import type { Db } from '../../../db/pool.js';
import type { FlowDef, FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import type { FlowDeps } from '../../service.js';
import { ensureImageCache, releaseImageCache, releaseImageCachesOf } from '../../storage/image/cache.js';
import { storageHost } from '../../storage/volume/placement.js';
import { destroyVolume, provisionVolume } from '../../storage/volume/provision.js';
import type { VmOpParams } from './model.js';
import { admitStep } from './operations.js';
import type { VmCtx } from './runtime.js';
import { finishOperation, vmResult, vmRow } from './transitions.js';

/** The volumes a rebuild works on, chosen before its admission (the API's and the health scanner's). */
export async function rebuildParams(db: Db, vmUuid: string) {
  const vm = await db
    .selectFrom('vms')
    .select('rootVolumeUuid')
    .where('uuid', '=', vmUuid)
    .executeTakeFirst();
  if (!vm?.rootVolumeUuid)
    throw new CloudError('Conflict', 'VM_ROOT_VOLUME_GONE', `vm ${vmUuid} has no root volume to rebuild`);
  return { newRootVolumeUuid: newId(), oldRootVolumeUuid: vm.rootVolumeUuid };
}

export interface RebuildParams extends VmOpParams {
  /** chosen at admission, so a rollback after a crash knows which volume to remove */
  newRootVolumeUuid: string;
  oldRootVolumeUuid: string;
}

type Ctx = VmCtx<RebuildParams>;
type Step = FlowStep<RebuildParams, FlowDeps>;

async function oldRoot(ctx: Ctx) {
  const volume = await ctx.db
    .selectFrom('volumes')
    .selectAll()
    .where('uuid', '=', ctx.params.oldRootVolumeUuid)
    .executeTakeFirst();
  if (!volume?.primaryStorageUuid)
    throw new CloudError(
      'Conflict',
      'VM_ROOT_VOLUME_GONE',
      `vm ${ctx.params.uuid} cannot be rebuilt: its root volume ${ctx.params.oldRootVolumeUuid} is gone`,
    );
  return volume;
}

const newRootVolume: Step = {
  name: 'new-root-volume',
  describe: 'clone a fresh root volume from the image',
  async run(ctx) {
    const vm = await vmRow(ctx.db, ctx.params.uuid);
    const old = await oldRoot(ctx);
    const image = vm.imageUuid
      ? await ctx.db
          .selectFrom('images')
          .select(['uuid', 'url', 'size', 'actualSize', 'format', 'state'])
          .where('uuid', '=', vm.imageUuid)
          .executeTakeFirst()
      : undefined;
    if (image?.state !== 'Ready' || image.format === 'iso')
      throw new CloudError(
        'Conflict',
        'VM_IMAGE_UNUSABLE',
        `vm ${vm.uuid} cannot be rebuilt: its image ${vm.imageUuid ?? '(none)'} is ${image ? (image.format === 'iso' ? 'an ISO' : image.state) : 'gone'}`,
      );
    const host = await storageHost(ctx.db, old);
    const cache = await ensureImageCache(
      ctx.db,
      ctx.deps.drivers,
      image,
      { primaryStorageUuid: old.primaryStorageUuid!, hostUuid: old.hostUuid, host },
      {
        jobUuid: ctx.job.uuid,
        ...(ctx.idle ? { idle: ctx.idle } : {}),
        ...(ctx.owners ? { owners: ctx.owners } : {}),
      },
    );
    ctx.data.cache = cache;
    await provisionVolume(ctx.db, ctx.deps.drivers, {
      uuid: ctx.params.newRootVolumeUuid,
      name: old.name,
      accountUuid: vm.accountUuid,
      type: 'Root',
      size: old.size,
      format: image.format,
      primaryStorageUuid: old.primaryStorageUuid!,
      hostUuid: old.hostUuid,
      host,
      vmUuid: null,
      deviceId: null,
      diskOfferingUuid: null,
      imageUuid: image.uuid,
      fromImageCachePath: cache.path,
      deleteWithVm: true,
    });
  },
  async rollback(ctx) {
    // past destroy-old-root the new disk is the only one the VM has: it stays (swap-root's rollback
    // kept it), and the VM ends Stopped on it
    const vm = await vmRow(ctx.db, ctx.params.uuid);
    if (vm.rootVolumeUuid !== ctx.params.newRootVolumeUuid)
      await destroyVolume(ctx.db, ctx.deps.drivers, ctx.params.newRootVolumeUuid);
    const cache = ctx.data.cache as { cacheUuid: string; created: boolean } | undefined;
    if (cache?.created) await releaseImageCache(ctx.db, ctx.deps.drivers, cache.cacheUuid, ctx.job.uuid);
    await releaseImageCachesOf(ctx.db, ctx.deps.drivers, ctx.job.uuid);
  },
};

/** Makes `to` the VM's root volume in place of `from` (one transaction; a no-op when done). */
async function swap(ctx: Ctx, from: string, to: string): Promise<void> {
  await ctx.db.transaction().execute(async (tx) => {
    const vm = await tx
      .selectFrom('vms')
      .select('rootVolumeUuid')
      .where('uuid', '=', ctx.params.uuid)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (vm.rootVolumeUuid !== from) return;
    const now = new Date();
    await tx
      .updateTable('volumes')
      .set({ vmUuid: null, deviceId: null, updatedAt: now })
      .where('uuid', '=', from)
      .execute();
    await tx
      .updateTable('volumes')
      .set({ vmUuid: ctx.params.uuid, deviceId: 0, updatedAt: now })
      .where('uuid', '=', to)
      .execute();
    await tx
      .updateTable('vms')
      .set({ rootVolumeUuid: to, updatedAt: now })
      .where('uuid', '=', ctx.params.uuid)
      .execute();
  });
}

const swapRoot: Step = {
  name: 'swap-root',
  describe: 'make the new volume the vm’s root',
  async run(ctx) {
    await swap(ctx, ctx.params.oldRootVolumeUuid, ctx.params.newRootVolumeUuid);
  },
  async rollback(ctx) {
    const old = await ctx.db
      .selectFrom('volumes')
      .select('uuid')
      .where('uuid', '=', ctx.params.oldRootVolumeUuid)
      .executeTakeFirst();
    // the old disk already deleted (a crash after destroy-old-root): the new one stays
    if (old) await swap(ctx, ctx.params.newRootVolumeUuid, ctx.params.oldRootVolumeUuid);
  },
};

const destroyOldRoot: Step = {
  name: 'destroy-old-root',
  describe: 'delete the old root volume',
  async run(ctx) {
    await destroyVolume(ctx.db, ctx.deps.drivers, ctx.params.oldRootVolumeUuid);
  },
};

const markRebuilt: Step = {
  name: 'mark-rebuilt',
  describe: 'the vm is ready to start on its new root volume',
  async run(ctx) {
    await finishOperation(ctx, 'rebuild', { state: 'Stopped' }, undefined, {
      rootVolumeUuid: ctx.params.newRootVolumeUuid,
      replaced: ctx.params.oldRootVolumeUuid,
    });
  },
};

export const vmRebuildFlow: FlowDef<RebuildParams, FlowDeps> = {
  kind: 'vm.rebuild',
  recovery: 'rollback',
  steps: [admitStep<RebuildParams>('rebuild'), newRootVolume, swapRoot, destroyOldRoot, markRebuilt],
  result: vmResult,
};
