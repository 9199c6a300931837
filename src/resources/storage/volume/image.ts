/**
 * Images made from a root volume or a snapshot ("create-image" on both kinds). The image row is
 * the images kind's; this family writes it directly: admitted Downloading, together with its
 * `image.num` quota and the room it takes on a backup storage of the volume's zone (if the zone
 * has one); the host holding the source copies its file onto that backup storage
 * (`image.upload`), then the image is marked Ready. A rollback removes the copy, the row, and
 * gives the quota and room back. A zone without backup storage gets an image that stays on the
 * primary storage (no copy; it can still be used there).
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import type { FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { accountOf, releaseQuota, reserveQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { backupStorageOf } from '../backup-storage/flows.js';
import { backupStorageAuthorization } from '../backup-storage/image-source.js';
import { storageRef } from '../primary-storage/capacity.js';
import type { VolumeRow } from './model.js';
import { storageHost } from './placement.js';

export interface ImageRequest {
  name: string;
  description?: string;
  platform?: string;
  guestOsType?: string;
}

export interface ImageParams {
  imageUuid: string;
}

/** Records the image (Downloading) and reserves its quota and backup-storage room, inside `tx`. */
export async function admitImage(
  tx: Tx,
  o: { imageUuid: string; body: ImageRequest; volume: VolumeRow; url: string; platform: string | null },
): Promise<void> {
  const { volume } = o;
  await reserveQuota(tx, await accountOf(tx, volume.accountUuid), { 'image.num': 1 });
  const backupStorageUuid = await reserveBackupStorage(tx, volume, volume.size);
  await tx
    .insertInto('images')
    .values({
      uuid: o.imageUuid,
      name: o.body.name,
      description: o.body.description ?? null,
      accountUuid: volume.accountUuid,
      format: volume.format === 'raw' ? 'raw' : 'qcow2',
      mediaType: volume.type === 'Root' ? 'RootVolumeTemplate' : 'DataVolumeTemplate',
      platform: o.body.platform ?? o.platform ?? 'Linux',
      guestOsType: o.body.guestOsType ?? null,
      url: o.url,
      size: volume.size,
      actualSize: volume.size,
      minDisk: volume.size,
      state: 'Downloading',
      backupStorageUuid,
      deletedAt: null,
    })
    .execute();
}

/** Any Enabled backup storage of the volume's zone with room (null when the zone has none). */
async function reserveBackupStorage(tx: Tx, volume: VolumeRow, size: number): Promise<string | null> {
  if (!volume.primaryStorageUuid) return null;
  const candidates = await tx
    .selectFrom('backupStorages as b')
    .innerJoin('backupStorageZones as z', 'z.backupStorageUuid', 'b.uuid')
    .innerJoin('primaryStorages as p', 'p.zoneUuid', 'z.zoneUuid')
    .select(['b.uuid'])
    .where('p.uuid', '=', volume.primaryStorageUuid)
    .where('b.state', '=', 'Enabled')
    .orderBy(sql`b.capacity_total - b.capacity_used`, 'desc')
    .limit(8)
    .execute();
  if (candidates.length === 0) return null;
  for (const c of candidates) {
    const res = await tx
      .updateTable('backupStorages')
      .set({ capacityUsed: sql`capacity_used + ${size}`, updatedAt: new Date() })
      .where('uuid', '=', c.uuid)
      .where(sql<boolean>`capacity_used + ${size} <= capacity_total`)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) return c.uuid;
  }
  throw new CloudError(
    'Conflict',
    'BACKUP_STORAGE_FULL',
    `no backup storage of the volume's zone has room for ${size} bytes`,
    {
      details: { size },
    },
  );
}

/** Done at admission; the rollback removes the image and gives its quota and room back. */
export function recordImageStep<P extends ImageParams>(): FlowStep<P, FlowDeps> {
  return {
    name: 'record-image',
    describe: 'record the image',
    async run() {},
    async rollback(ctx) {
      await ctx.db.transaction().execute(async (tx) => {
        const img = await tx
          .deleteFrom('images')
          .where('uuid', '=', ctx.params.imageUuid)
          .where('state', '=', 'Downloading')
          .returning(['accountUuid', 'backupStorageUuid', 'actualSize'])
          .executeTakeFirst();
        if (!img) return;
        await tx.deleteFrom('tags').where('resourceUuid', '=', ctx.params.imageUuid).execute();
        await releaseQuota(tx, await accountOf(tx, img.accountUuid), { 'image.num': 1 });
        if (img.backupStorageUuid) {
          await tx
            .updateTable('backupStorages')
            .set({ capacityUsed: sql`greatest(capacity_used - ${img.actualSize}, 0)`, updatedAt: new Date() })
            .where('uuid', '=', img.backupStorageUuid)
            .execute();
        }
      });
    },
  };
}

/** Where the image's bytes come from: a volume's file, or one of its snapshots' file. */
export interface ImageSource {
  volume: VolumeRow;
  path: string;
}

/** The host that reaches the source copies it onto the image's backup storage. */
export function uploadImageStep<P extends ImageParams>(
  source: (ctx: StepContext<P, FlowDeps>) => Promise<ImageSource>,
): FlowStep<P, FlowDeps> {
  return {
    name: 'upload',
    describe: 'copy the data onto the backup storage',
    async run(ctx) {
      const image = await imageRow(ctx.db, ctx.params.imageUuid);
      if (!image?.backupStorageUuid) return; // no backup storage in the zone: nothing to copy to
      const bs = await backupStorageOf(ctx, image.backupStorageUuid);
      const { volume, path } = await source(ctx);
      const authorization = await backupStorageAuthorization(ctx.db, bs.uuid);
      await ctx.deps.drivers.send(await storageHost(ctx.db, volume), 'image.upload', {
        imageUuid: image.uuid,
        sourcePath: path,
        size: image.size,
        storage: await storageRef(ctx.db, volume.primaryStorageUuid!),
        backupStorageUrl: bs.url,
        ...(authorization ? { authorization } : {}),
      });
    },
    async rollback(ctx) {
      const image = await imageRow(ctx.db, ctx.params.imageUuid);
      if (!image?.backupStorageUuid) return;
      // idempotent on the storage: right also when the copy never started or stopped half-way
      const bs = await backupStorageOf(ctx, image.backupStorageUuid);
      await ctx.deps.backupStorages.send(bs, 'bs.delete-image', { imageUuid: image.uuid });
    },
  };
}

/** After the copy: the image is Ready. */
export function markImageReadyStep<P extends ImageParams>(): FlowStep<P, FlowDeps> {
  return {
    name: 'mark-ready',
    describe: 'mark the image Ready',
    async run(ctx) {
      await ctx.db
        .updateTable('images')
        .set({ state: 'Ready', updatedAt: new Date() })
        .where('uuid', '=', ctx.params.imageUuid)
        .where('state', '=', 'Downloading')
        .execute();
    },
    async rollback(ctx) {
      await ctx.db
        .updateTable('images')
        .set({ state: 'Downloading', updatedAt: new Date() })
        .where('uuid', '=', ctx.params.imageUuid)
        .where('state', '=', 'Ready')
        .execute();
    },
  };
}

export async function imageRow(db: import('../../../db/pool.js').Db, uuid: string) {
  return db.selectFrom('images').selectAll().where('uuid', '=', uuid).executeTakeFirst();
}
