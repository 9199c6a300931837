/**
 * Image chains, all in the image's queue (one operation at a time per image).
 *
 * Add from URL: create-record and reserve-quota (both done at admission, in the transaction that
 * inserts the Downloading row and reserves `image.num`) → download (`bs.download-image`) →
 * reserve-capacity (the size the storage reported, by one conditional UPDATE of the backup
 * storage; refused with BACKUP_STORAGE_FULL) → mark-ready. The size is only known once the
 * storage has fetched the image (the protocol has no size probe), so the capacity is reserved
 * right after the download and a refusal deletes the downloaded copy.
 * Every counter is given back exactly once, even when a node dies mid-rollback: each release is
 * in one transaction with a change that marks it done (quota: the row turns Error; capacity: the
 * row's actualSize goes back to 0; expunge: the row is deleted).
 *
 * Delete is soft (Deleted, recoverable); expunge removes the copy from the backup storage, then
 * the row, giving back the storage capacity and the quota. Image-cache entries on primary
 * storage are left in place (volumes cloned from them may still need them).
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError, notFound } from '../../../kernel/errors.js';
import { createRecordStep, type Family, readRow, resourceEvent } from '../../common.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { backupStorageOf } from '../backup-storage/flows.js';
import { assertImageState } from './model.js';

export const imageFamily: Family = { singular: 'image', kind: 'images', table: 'images' };

type Ctx = StepContext<unknown, FlowDeps>;

async function imageOf(ctx: { db: Ctx['db'] }, uuid: string) {
  const image = await ctx.db.selectFrom('images').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!image) throw notFound('image', uuid);
  return image;
}

/** Gives a backup storage `bytes` back (never below zero). */
async function releaseBackupStorage(tx: Tx, uuid: string, bytes: number): Promise<void> {
  await tx
    .updateTable('backupStorages')
    .set({ capacityUsed: sql`greatest(capacity_used - ${bytes}, 0)`, updatedAt: new Date() })
    .where('uuid', '=', uuid)
    .execute();
}

/** Moves the image from one of `from` to `to` with an event; false when it was in none of them. */
async function setState(
  ctx: Ctx,
  to: 'Ready' | 'Downloading' | 'Deleted',
  from: Array<'Ready' | 'Downloading' | 'Deleted' | 'Error'>,
): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    const row = await tx
      .updateTable('images')
      .set({ state: to, updatedAt: new Date(), deletedAt: to === 'Deleted' ? new Date() : null })
      .where('uuid', '=', ctx.job.resourceUuid!)
      .where('state', 'in', from)
      .returning(['uuid', 'accountUuid'])
      .executeTakeFirst();
    if (row)
      batch.add({
        ...resourceEvent(imageFamily, row, 'state.changed', { state: to }),
        jobUuid: ctx.job.uuid,
      });
    return row !== undefined;
  });
}

const reserveQuotaStep: FlowStep<unknown, FlowDeps> = {
  name: 'reserve-quota',
  describe: 'reserve the image quota',
  async run() {}, // done at admission, in the creating transaction
  async rollback(ctx) {
    await ctx.db.transaction().execute(async (tx) => {
      // the state change and the release commit together: a second rollback finds Error and stops
      const row = await tx
        .updateTable('images')
        .set({ state: 'Error', updatedAt: new Date() })
        .where('uuid', '=', ctx.job.resourceUuid!)
        .where('state', '!=', 'Error')
        .returning('accountUuid')
        .executeTakeFirst();
      if (row) await releaseQuota(tx, await accountOf(tx, row.accountUuid), { 'image.num': 1 });
    });
  },
};

interface Downloaded {
  size: number;
  actualSize: number;
}

const download: FlowStep<unknown, FlowDeps> = {
  name: 'download',
  describe: 'download the image onto the backup storage',
  async run(ctx) {
    const image = await imageOf(ctx, ctx.job.resourceUuid!);
    const bs = await backupStorageOf(ctx, image.backupStorageUuid!);
    const res = await ctx.deps.backupStorages.send(bs, 'bs.download-image', {
      imageUuid: image.uuid,
      url: image.url,
    });
    if (!(res.actualSize > 0 && res.size > 0)) {
      throw new CloudError(
        'Internal',
        'IMAGE_SIZE_UNKNOWN',
        `backup storage ${bs.uuid} reported no size for ${image.url}`,
        {
          details: { ...res },
        },
      );
    }
    ctx.data.downloaded = { size: res.size, actualSize: res.actualSize } satisfies Downloaded;
  },
  async rollback(ctx) {
    const image = await ctx.db
      .selectFrom('images')
      .select(['uuid', 'backupStorageUuid'])
      .where('uuid', '=', ctx.job.resourceUuid!)
      .executeTakeFirst();
    if (!image?.backupStorageUuid) return;
    // idempotent on the storage: also right when the download never started or stopped half-way
    const bs = await backupStorageOf(ctx, image.backupStorageUuid);
    await ctx.deps.backupStorages.send(bs, 'bs.delete-image', { imageUuid: image.uuid });
  },
};

const reserveCapacity: FlowStep<unknown, FlowDeps> = {
  name: 'reserve-capacity',
  describe: 'account the image on its backup storage',
  async run(ctx) {
    const { size, actualSize } = ctx.data.downloaded as Downloaded;
    const uuid = ctx.job.resourceUuid!;
    await ctx.db.transaction().execute(async (tx) => {
      const image = await tx
        .updateTable('images')
        .set({ size, actualSize, updatedAt: new Date() })
        .where('uuid', '=', uuid)
        .where('actualSize', '=', 0)
        .returning('backupStorageUuid')
        .executeTakeFirst();
      if (!image) return; // already accounted
      const bsUuid = image.backupStorageUuid!;
      const res = await tx
        .updateTable('backupStorages')
        .set({ capacityUsed: sql`capacity_used + ${actualSize}`, updatedAt: new Date() })
        .where('uuid', '=', bsUuid)
        .where(sql<boolean>`capacity_used + ${actualSize} <= capacity_total`)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) {
        const bs = await tx
          .selectFrom('backupStorages')
          .select(['capacityTotal', 'capacityUsed'])
          .where('uuid', '=', bsUuid)
          .executeTakeFirst();
        const available = bs ? bs.capacityTotal - bs.capacityUsed : 0;
        throw new CloudError(
          'Conflict',
          'BACKUP_STORAGE_FULL',
          `backup storage ${bsUuid} has ${available} bytes free; the image needs ${actualSize}`,
          { details: { backupStorageUuid: bsUuid, needed: actualSize, available } },
        );
      }
    });
  },
  async rollback(ctx) {
    await ctx.db.transaction().execute(async (tx) => {
      const image = await tx
        .selectFrom('images')
        .select(['actualSize', 'backupStorageUuid'])
        .where('uuid', '=', ctx.job.resourceUuid!)
        .forUpdate()
        .executeTakeFirst();
      if (!image || image.actualSize === 0 || !image.backupStorageUuid) return;
      await tx
        .updateTable('images')
        .set({ size: 0, actualSize: 0 })
        .where('uuid', '=', ctx.job.resourceUuid!)
        .execute();
      await releaseBackupStorage(tx, image.backupStorageUuid, image.actualSize);
    });
  },
};

const markReady: FlowStep<unknown, FlowDeps> = {
  name: 'mark-ready',
  describe: 'mark the image Ready',
  async run(ctx) {
    if (!(await setState(ctx, 'Ready', ['Downloading'])))
      throw new CloudError(
        'Conflict',
        'IMAGE_INVALID_STATE',
        `image ${ctx.job.resourceUuid} is no longer Downloading`,
      );
  },
  async rollback(ctx) {
    await setState(ctx, 'Downloading', ['Ready']);
  },
};

export const imageCreateFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'image.create',
  recovery: 'rollback',
  steps: [createRecordStep(imageFamily), reserveQuotaStep, download, reserveCapacity, markReady],
  result: (ctx) => readRow(ctx.db, 'images', ctx.job.resourceUuid!),
};

/** The steps done at admission (in the transaction that inserts the row and reserves the quota). */
export const IMAGE_CREATE_DONE_AT_ADMISSION = ['create-record', 'reserve-quota'];

export const imageDeleteFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'image.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'mark-deleted',
      describe: 'mark the image Deleted (recoverable until expunged)',
      async run(ctx) {
        if (await setState(ctx, 'Deleted', ['Ready', 'Error'])) return;
        const image = await imageOf(ctx, ctx.job.resourceUuid!);
        if (image.state === 'Deleted') return; // deleting twice is a success
        throw new CloudError(
          'Conflict',
          'IMAGE_INVALID_STATE',
          `image ${image.uuid} is ${image.state}; only a Ready image can be deleted`,
          {
            details: { state: image.state },
          },
        );
      },
    },
  ],
  result: (ctx) => readRow(ctx.db, 'images', ctx.job.resourceUuid!),
};

export const imageRecoverFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'image.recover',
  recovery: 'resume',
  steps: [
    {
      name: 'mark-ready',
      describe: 'bring the image back',
      async run(ctx) {
        if (await setState(ctx, 'Ready', ['Deleted'])) return;
        const image = await imageOf(ctx, ctx.job.resourceUuid!);
        if (image.state !== 'Ready') assertImageState(image.uuid, image.state, 'recover');
      },
    },
  ],
  result: (ctx) => readRow(ctx.db, 'images', ctx.job.resourceUuid!),
};

export const imageExpungeFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'image.expunge',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-from-backup-storage',
      describe: 'delete the image from its backup storage',
      async run(ctx) {
        const image = await ctx.db
          .selectFrom('images')
          .selectAll()
          .where('uuid', '=', ctx.job.resourceUuid!)
          .executeTakeFirst();
        if (!image) return; // expunged already (a second expunge, or the reaper)
        assertImageState(image.uuid, image.state, 'expunge');
        if (!image.backupStorageUuid) return;
        const bs = await backupStorageOf(ctx, image.backupStorageUuid);
        await ctx.deps.backupStorages.send(bs, 'bs.delete-image', { imageUuid: image.uuid });
      },
    },
    {
      name: 'remove-record',
      describe: 'remove the image and give back its capacity and quota',
      async run(ctx) {
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const row = await tx
            .deleteFrom('images')
            .where('uuid', '=', ctx.job.resourceUuid!)
            .where('state', '=', 'Deleted')
            .returning(['uuid', 'accountUuid', 'actualSize', 'backupStorageUuid'])
            .executeTakeFirst();
          if (!row) return;
          if (row.backupStorageUuid) await releaseBackupStorage(tx, row.backupStorageUuid, row.actualSize);
          await releaseQuota(tx, await accountOf(tx, row.accountUuid), { 'image.num': 1 });
          await tx.deleteFrom('tags').where('resourceUuid', '=', row.uuid).execute();
          batch.add({ ...resourceEvent(imageFamily, row, 'expunged'), jobUuid: ctx.job.uuid });
        });
      },
    },
  ],
};
