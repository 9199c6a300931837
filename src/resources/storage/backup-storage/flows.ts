/**
 * Backup-storage chains. Adding one: record (at admission) → provision the simulated storage
 * (simulator only) → connect (`bs.connect`: learn its capacity) → mark Connected. Reconnecting:
 * mark Connecting → connect → mark Connected; on failure it ends Disconnected. Attaching to and
 * detaching from zones are one-step flows. Status moves only by conditional UPDATEs.
 * All of them run in the storage's queue (one at a time), so they never interleave.
 */
import type { BackupStorageAddress } from '../../../drivers/backup-storage.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError, invalidField } from '../../../kernel/errors.js';
import { createRecordStep, type Family, readRow, resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';

export const backupStorageFamily: Family = {
  singular: 'backup-storage',
  kind: 'backup-storages',
  table: 'backupStorages',
};

type Ctx = StepContext<unknown, FlowDeps>;
type Status = 'Connecting' | 'Connected' | 'Disconnected';

export async function backupStorageOf(
  ctx: { db: Ctx['db'] },
  uuid: string,
): Promise<BackupStorageAddress & { capacityTotal: number; accountUuid: string }> {
  const bs = await ctx.db
    .selectFrom('backupStorages')
    .select(['uuid', 'type', 'url', 'capacityTotal', 'accountUuid'])
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  if (!bs)
    throw new CloudError('NotFound', 'BACKUP_STORAGE_NOT_FOUND', `backup storage ${uuid} no longer exists`);
  return bs;
}

async function setStatus(ctx: Ctx, to: Status, from?: Status[]): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    let q = tx
      .updateTable('backupStorages')
      .set({ status: to, updatedAt: new Date() })
      .where('uuid', '=', ctx.job.resourceUuid!);
    if (from) q = q.where('status', 'in', from);
    const row = await q.returning(['uuid', 'accountUuid']).executeTakeFirst();
    if (row)
      batch.add({
        ...resourceEvent(backupStorageFamily, row, 'status.changed', { status: to }),
        jobUuid: ctx.job.uuid,
      });
    return row !== undefined;
  });
}

const connect: FlowStep<unknown, FlowDeps> = {
  name: 'connect',
  describe: 'connect to the backup storage and read its capacity',
  async run(ctx) {
    const bs = await backupStorageOf(ctx, ctx.job.resourceUuid!);
    const res = await ctx.deps.backupStorages.send(bs, 'bs.connect', {});
    ctx.data.previousCapacity = bs.capacityTotal;
    await ctx.db
      .updateTable('backupStorages')
      .set({ capacityTotal: res.capacityTotal, updatedAt: new Date() })
      .where('uuid', '=', bs.uuid)
      .execute();
  },
  async rollback(ctx) {
    // nothing saved: the step stopped before it changed anything
    if (typeof ctx.data.previousCapacity !== 'number') return;
    await ctx.db
      .updateTable('backupStorages')
      .set({ capacityTotal: ctx.data.previousCapacity })
      .where('uuid', '=', ctx.job.resourceUuid!)
      .execute();
  },
};

const markConnected: FlowStep<unknown, FlowDeps> = {
  name: 'mark-connected',
  describe: 'mark the backup storage Connected',
  async run(ctx) {
    await setStatus(ctx, 'Connected');
  },
  async rollback(ctx) {
    await setStatus(ctx, 'Connecting', ['Connected']);
  },
};

export interface BackupStorageCreateParams {
  capacity?: number;
}

export const backupStorageCreateFlow: FlowDef<BackupStorageCreateParams, FlowDeps> = {
  kind: 'backup-storage.create',
  recovery: 'rollback',
  steps: [
    createRecordStep(backupStorageFamily),
    {
      name: 'provision',
      describe: 'provision the simulated storage',
      async run(ctx) {
        const bs = await backupStorageOf(ctx, ctx.job.resourceUuid!);
        await ctx.deps.backupStorages.provision(
          bs,
          ctx.params.capacity ? { capacity: ctx.params.capacity } : {},
        );
      },
    },
    connect as FlowStep<BackupStorageCreateParams, FlowDeps>,
    markConnected as FlowStep<BackupStorageCreateParams, FlowDeps>,
  ],
  result: (ctx) => readRow(ctx.db, 'backupStorages', ctx.job.resourceUuid!),
};

export const backupStorageReconnectFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'backup-storage.reconnect',
  recovery: 'rollback',
  steps: [
    {
      name: 'mark-connecting',
      describe: 'mark the backup storage Connecting',
      async run(ctx) {
        if (!(await setStatus(ctx, 'Connecting', ['Connected', 'Disconnected']))) {
          ctx.data.busy = true;
          throw new CloudError('Conflict', 'BACKUP_STORAGE_BUSY', 'the backup storage is already connecting');
        }
      },
      async rollback(ctx) {
        if (ctx.data.busy) return;
        await setStatus(ctx, 'Disconnected', ['Connecting']);
      },
    },
    connect,
    markConnected,
  ],
  result: (ctx) => readRow(ctx.db, 'backupStorages', ctx.job.resourceUuid!),
};

export interface ZoneParams {
  uuid: string;
  zoneUuid: string;
}

/** attach-zone / detach-zone: one step each, idempotent (attaching twice or detaching a zone it is not in succeeds). */
export function zoneFlow(action: 'attach-zone' | 'detach-zone'): FlowDef<ZoneParams, FlowDeps> {
  const attach = action === 'attach-zone';
  return {
    kind: `backup-storage.${action}`,
    recovery: 'resume',
    steps: [
      {
        name: attach ? 'attach' : 'detach',
        describe: attach
          ? 'attach the backup storage to the zone'
          : 'detach the backup storage from the zone',
        async run(ctx) {
          const { uuid, zoneUuid } = ctx.params;
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            const bs = await tx
              .selectFrom('backupStorages')
              .select(['uuid', 'accountUuid'])
              .where('uuid', '=', uuid)
              .executeTakeFirst();
            if (!bs)
              throw new CloudError(
                'NotFound',
                'BACKUP_STORAGE_NOT_FOUND',
                `backup storage ${uuid} not found`,
              );
            let changed: boolean;
            if (attach) {
              // the share lock keeps the zone from being deleted until the attachment is in
              const zone = await tx
                .selectFrom('zones')
                .select('uuid')
                .where('uuid', '=', zoneUuid)
                .forShare()
                .executeTakeFirst();
              if (!zone) throw invalidField('zoneUuid', `no zone ${zoneUuid}`, 'ZONE_NOT_FOUND');
              const res = await tx
                .insertInto('backupStorageZones')
                .values({ backupStorageUuid: uuid, zoneUuid })
                .onConflict((oc) => oc.columns(['backupStorageUuid', 'zoneUuid']).doNothing())
                .executeTakeFirst();
              changed = Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
            } else {
              const res = await tx
                .deleteFrom('backupStorageZones')
                .where('backupStorageUuid', '=', uuid)
                .where('zoneUuid', '=', zoneUuid)
                .executeTakeFirst();
              changed = Number(res.numDeletedRows) > 0;
            }
            if (changed)
              batch.add({
                ...resourceEvent(backupStorageFamily, bs, attach ? 'zone.attached' : 'zone.detached', {
                  zoneUuid,
                }),
                jobUuid: ctx.job.uuid,
              });
          });
        },
      },
    ],
    result: (ctx) => readRow(ctx.db, 'backupStorages', ctx.params.uuid),
  };
}
