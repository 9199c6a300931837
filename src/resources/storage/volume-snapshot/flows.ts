/**
 * Snapshot chains. A volume's snapshots form a tree: a new snapshot's parent is the volume's
 * `latest` one (what its current data is based on), and `latest` moves to it; a revert makes the
 * reverted-to snapshot `latest`, so the next snapshot branches from it. Changes to the flags lock
 * the volume row, so the chains of one volume never interleave them.
 *
 *   create: create-record → take → link
 *   delete: delete-on-storage → remove-records    (the snapshot and its whole subtree, as ZStack)
 *   revert: claim-vm → mark-latest → revert-on-storage → release-vm
 *   create-image: record-image → upload → mark-ready
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import type { FlowDef, FlowStep } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { changeFlow, resourceEvent } from '../../common.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import type { FlowDeps } from '../../service.js';
import { storageRef } from '../primary-storage/capacity.js';
import {
  type ImageParams,
  imageRow,
  markImageReadyStep,
  recordImageStep,
  uploadImageStep,
} from '../volume/image.js';
import { snapshotFamily as family, type SnapshotRow, volumeGone } from '../volume/model.js';
import { storageHost } from '../volume/placement.js';
import { type Ctx, claimVmStep, releaseVmStep } from '../volume/steps.js';

export interface SnapshotParams {
  volumeUuid: string;
  vmUuid?: string | null;
}

async function snapshotOf(ctx: Ctx<unknown>): Promise<SnapshotRow> {
  const uuid = ctx.job.resourceUuid!;
  const row = await ctx.db
    .selectFrom('volumeSnapshots')
    .selectAll()
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  if (!row)
    throw new CloudError('NotFound', 'VOLUME_SNAPSHOT_NOT_FOUND', `volume-snapshot ${uuid} not found`);
  return row;
}

async function commandTarget(ctx: Ctx<unknown>, volumeUuid: string) {
  const v = await ctx.db.selectFrom('volumes').selectAll().where('uuid', '=', volumeUuid).executeTakeFirst();
  if (!v?.primaryStorageUuid) throw volumeGone(volumeUuid);
  return { host: await storageHost(ctx.db, v), storage: await storageRef(ctx.db, v.primaryStorageUuid) };
}

/** Serialises flag changes of one volume's tree (and refuses when the volume is gone). */
async function lockVolume(tx: Tx, volumeUuid: string): Promise<void> {
  const v = await tx
    .selectFrom('volumes')
    .select('uuid')
    .where('uuid', '=', volumeUuid)
    .forUpdate()
    .executeTakeFirst();
  if (!v) throw volumeGone(volumeUuid);
}

async function latestOf(tx: Tx, volumeUuid: string): Promise<string | null> {
  const row = await tx
    .selectFrom('volumeSnapshots')
    .select('uuid')
    .where('volumeUuid', '=', volumeUuid)
    .where('latest', '=', true)
    .executeTakeFirst();
  return row?.uuid ?? null;
}

async function makeLatest(tx: Tx, volumeUuid: string, uuid: string | null): Promise<void> {
  await tx
    .updateTable('volumeSnapshots')
    .set({ latest: false })
    .where('volumeUuid', '=', volumeUuid)
    .where('latest', '=', true)
    .execute();
  if (uuid)
    await tx
      .updateTable('volumeSnapshots')
      .set({ latest: true, updatedAt: new Date() })
      .where('uuid', '=', uuid)
      .execute();
}

const createRecord: FlowStep<SnapshotParams, FlowDeps> = {
  name: 'create-record',
  describe: 'record the snapshot',
  async run() {},
  async rollback(ctx) {
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const gone = await tx
        .deleteFrom('volumeSnapshots')
        .where('uuid', '=', ctx.job.resourceUuid!)
        .returningAll()
        .executeTakeFirst();
      if (!gone) return;
      await tx.deleteFrom('tags').where('resourceUuid', '=', gone.uuid).execute();
      await releaseQuota(tx, await accountOf(tx, gone.accountUuid), { 'snapshot.num': 1 });
      batch.add({
        ...resourceEvent(family, gone, 'deleted', { reason: 'rolled back' }),
        jobUuid: ctx.job.uuid,
      });
    });
  },
};

const take: FlowStep<SnapshotParams, FlowDeps> = {
  name: 'take',
  describe: 'take the snapshot on the storage',
  async run(ctx) {
    const { host, storage } = await commandTarget(ctx, ctx.params.volumeUuid);
    const taken = await ctx.deps.drivers.send(host, 'snapshot.create', {
      volumeUuid: ctx.params.volumeUuid,
      snapshotUuid: ctx.job.resourceUuid!,
      storage,
    });
    ctx.data.size = taken.size;
    ctx.data.path = taken.path;
  },
  async rollback(ctx) {
    const { host, storage } = await commandTarget(ctx, ctx.params.volumeUuid);
    await ctx.deps.drivers.send(host, 'snapshot.delete', { snapshotUuid: ctx.job.resourceUuid!, storage });
  },
};

const link: FlowStep<SnapshotParams, FlowDeps> = {
  name: 'link',
  describe: 'link it under the volume’s latest snapshot',
  async run(ctx) {
    const uuid = ctx.job.resourceUuid!;
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      await lockVolume(tx, ctx.params.volumeUuid);
      const parent = await latestOf(tx, ctx.params.volumeUuid);
      await makeLatest(tx, ctx.params.volumeUuid, null);
      const row = await tx
        .updateTable('volumeSnapshots')
        .set({
          parentUuid: parent === uuid ? null : parent,
          latest: true,
          state: 'Ready',
          size: (ctx.data.size as number | undefined) ?? 0,
          path: (ctx.data.path as string | undefined) ?? null,
          updatedAt: new Date(),
        })
        .where('uuid', '=', uuid)
        .returningAll()
        .executeTakeFirstOrThrow();
      ctx.data.previousLatest = parent;
      batch.add({
        ...resourceEvent(family, row, 'ready', { parentUuid: row.parentUuid }),
        jobUuid: ctx.job.uuid,
      });
    });
  },
  async rollback(ctx) {
    if (ctx.data.previousLatest === undefined) return;
    const previous = ctx.data.previousLatest as string | null;
    await ctx.db.transaction().execute(async (tx) => {
      await lockVolume(tx, ctx.params.volumeUuid);
      const self = await tx
        .updateTable('volumeSnapshots')
        .set({ latest: false, state: 'Creating', parentUuid: null })
        .where('uuid', '=', ctx.job.resourceUuid!)
        .where('latest', '=', true)
        .returning('uuid')
        .executeTakeFirst();
      if (self && previous) await makeLatest(tx, ctx.params.volumeUuid, previous);
    });
  },
};

export const snapshotCreateFlow: FlowDef<SnapshotParams, FlowDeps> = {
  kind: 'volume-snapshot.create',
  recovery: 'rollback',
  steps: [createRecord, take, link],
  result: (ctx) => snapshotOf(ctx),
};

/** The snapshot and its descendants, deepest first. */
async function subtree(
  exec: Tx | Ctx<unknown>['db'],
  root: string,
): Promise<Array<{ uuid: string; depth: number }>> {
  const rows = await sql<{ uuid: string; depth: number }>`
    with recursive tree(uuid, depth) as (
      select uuid, 0 from volume_snapshots where uuid = ${root}
      union all
      select s.uuid, t.depth + 1 from volume_snapshots s join tree t on s.parent_uuid = t.uuid
    )
    select uuid, depth from tree order by depth desc`.execute(exec);
  return rows.rows;
}

export const snapshotDeleteFlow: FlowDef<SnapshotParams, FlowDeps> = {
  kind: 'volume-snapshot.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-on-storage',
      describe: 'delete the snapshot and its descendants on the storage',
      async run(ctx) {
        const tree = await subtree(ctx.db, ctx.job.resourceUuid!);
        if (tree.length === 0) return;
        const { host, storage } = await commandTarget(ctx, ctx.params.volumeUuid);
        for (const s of tree)
          await ctx.deps.drivers.send(host, 'snapshot.delete', { snapshotUuid: s.uuid, storage });
      },
    },
    {
      name: 'remove-records',
      describe: 'remove the snapshot records, give their quota back',
      async run(ctx) {
        const root = ctx.job.resourceUuid!;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          await lockVolume(tx, ctx.params.volumeUuid);
          const top = await tx
            .selectFrom('volumeSnapshots')
            .selectAll()
            .where('uuid', '=', root)
            .executeTakeFirst();
          if (!top) return;
          const uuids = (await subtree(tx, root)).map((s) => s.uuid);
          const latestInside = await tx
            .selectFrom('volumeSnapshots')
            .select('uuid')
            .where('uuid', 'in', uuids)
            .where('latest', '=', true)
            .executeTakeFirst();
          // the volume's data was based on a deleted snapshot: the nearest survivor is its base now
          if (latestInside && top.parentUuid) await makeLatest(tx, ctx.params.volumeUuid, top.parentUuid);
          await tx
            .updateTable('volumeSnapshots')
            .set({ parentUuid: null })
            .where('uuid', 'in', uuids)
            .execute();
          await tx.deleteFrom('volumeSnapshots').where('uuid', 'in', uuids).execute();
          await tx.deleteFrom('tags').where('resourceUuid', 'in', uuids).execute();
          await releaseQuota(tx, await accountOf(tx, top.accountUuid), { 'snapshot.num': uuids.length });
          for (const uuid of uuids) {
            batch.add({
              ...resourceEvent(
                family,
                { uuid, accountUuid: top.accountUuid },
                'deleted',
                uuid === root ? {} : { with: root },
              ),
              jobUuid: ctx.job.uuid,
            });
          }
        });
      },
    },
  ],
};

const vmOf = (ctx: Ctx<SnapshotParams>) => ctx.params.vmUuid;

export const snapshotRevertFlow: FlowDef<SnapshotParams, FlowDeps> = {
  kind: 'volume-snapshot.revert',
  recovery: 'rollback',
  steps: [
    claimVmStep('revert-volume', vmOf),
    {
      name: 'mark-latest',
      describe: 'make the snapshot the volume’s latest',
      async run(ctx) {
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          await lockVolume(tx, ctx.params.volumeUuid);
          const s = await tx
            .selectFrom('volumeSnapshots')
            .selectAll()
            .where('uuid', '=', ctx.job.resourceUuid!)
            .executeTakeFirst();
          if (s?.state !== 'Ready') {
            throw new CloudError(
              'Conflict',
              'VOLUME_SNAPSHOT_CHANGED',
              `snapshot ${ctx.job.resourceUuid} is gone or not Ready`,
            );
          }
          const previous = await latestOf(tx, ctx.params.volumeUuid);
          await makeLatest(tx, ctx.params.volumeUuid, s.uuid);
          ctx.data.previousLatest = previous;
          batch.add({
            ...resourceEvent(family, s, 'reverted', { volumeUuid: s.volumeUuid }),
            jobUuid: ctx.job.uuid,
          });
        });
      },
      async rollback(ctx) {
        if (ctx.data.previousLatest === undefined) return;
        await ctx.db.transaction().execute(async (tx) => {
          await lockVolume(tx, ctx.params.volumeUuid);
          await makeLatest(tx, ctx.params.volumeUuid, ctx.data.previousLatest as string | null);
        });
      },
    },
    {
      name: 'revert-on-storage',
      describe: 'revert the volume on its storage',
      async run(ctx) {
        const { host, storage } = await commandTarget(ctx, ctx.params.volumeUuid);
        await ctx.deps.drivers.send(host, 'snapshot.revert', {
          volumeUuid: ctx.params.volumeUuid,
          snapshotUuid: ctx.job.resourceUuid!,
          storage,
        });
      },
    },
    releaseVmStep('revert-volume', vmOf),
  ],
  result: (ctx) => snapshotOf(ctx),
};

export const snapshotImageFlow: FlowDef<ImageParams & SnapshotParams, FlowDeps> = {
  kind: 'volume-snapshot.create-image',
  recovery: 'rollback',
  steps: [
    recordImageStep(),
    uploadImageStep(async (ctx) => {
      const snapshot = await snapshotOf(ctx);
      const volume = await ctx.db
        .selectFrom('volumes')
        .selectAll()
        .where('uuid', '=', snapshot.volumeUuid)
        .executeTakeFirst();
      if (!volume?.primaryStorageUuid) throw volumeGone(snapshot.volumeUuid);
      return { volume, path: snapshot.path ?? '' };
    }),
    markImageReadyStep(),
  ],
  result: (ctx) => imageRow(ctx.db, ctx.params.imageUuid),
};

export const SNAPSHOT_FLOWS = [
  snapshotCreateFlow,
  snapshotDeleteFlow,
  snapshotRevertFlow,
  snapshotImageFlow,
  changeFlow(family, 'volume-snapshot.update', 'updated'),
] as FlowDef<never, FlowDeps>[];
