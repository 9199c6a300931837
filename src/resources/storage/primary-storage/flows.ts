/**
 * Primary-storage flows, each one step in the storage's queue (so they never interleave on one
 * storage): update (capacity may only grow; local storage grows every host's share), attach and
 * detach a cluster (local storage: add or drop the cluster's host shares), clean the image cache.
 * Checks are repeated inside the step's transaction: admission answered at once, the step
 * decides against what is committed by then.
 */
import { mapUnique } from '../../../db/errors.js';
import type { Executor, Tx } from '../../../db/transaction.js';
import type { FlowDef, StepContext } from '../../../engine/flow.js';
import { CloudError, invalidField, notFound } from '../../../kernel/errors.js';
import { type Family, readRow, resourceEvent } from '../../common.js';
import { assertClusterInZone } from '../../compute/cluster/in-zone.js';
import type { FlowDeps } from '../../service.js';
import { removeImageCacheEntry } from '../image/cache.js';
import { isLocal } from './capacity.js';
import { addClusterShares } from './shares.js';

export const primaryStorageFamily: Family = {
  singular: 'primary-storage',
  kind: 'primary-storages',
  table: 'primaryStorages',
};

const result = (ctx: StepContext<{ uuid: string }, FlowDeps>) =>
  readRow(ctx.db, 'primaryStoragesWithCapacity', ctx.params.uuid);

async function storageFor(tx: Tx, uuid: string) {
  // the row lock orders this step against capacity reservations that read the row's totals
  const ps = await tx
    .selectFrom('primaryStorages')
    .select(['uuid', 'accountUuid', 'type', 'zoneUuid', 'capacityTotal'])
    .where('uuid', '=', uuid)
    .forUpdate()
    .executeTakeFirst();
  if (!ps) throw notFound('primary-storage', uuid);
  return ps;
}

/** Refuses a capacity below the current one: used bytes could then exceed it. */
export function checkCapacityGrowth(current: number, wanted: number): void {
  if (wanted < current) {
    throw invalidField(
      'capacity',
      `may only grow: it is ${current} bytes, ${wanted} asked`,
      'PRIMARY_STORAGE_CAPACITY_SHRINK',
    );
  }
}

export interface UpdateParams {
  uuid: string;
  changes: { name?: string; description?: string; overProvisioningRatio?: number; capacity?: number };
}

export const primaryStorageUpdateFlow: FlowDef<UpdateParams, FlowDeps> = {
  kind: 'primary-storage.update',
  recovery: 'resume',
  steps: [
    {
      name: 'apply',
      describe: 'update the primary storage',
      async run(ctx) {
        const { capacity, ...rest } = ctx.params.changes;
        try {
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            const ps = await storageFor(tx, ctx.params.uuid);
            if (capacity !== undefined) checkCapacityGrowth(ps.capacityTotal, capacity);
            await tx
              .updateTable('primaryStorages')
              .set({
                ...rest,
                ...(capacity !== undefined ? { capacityTotal: capacity } : {}),
                updatedAt: new Date(),
              })
              .where('uuid', '=', ps.uuid)
              .execute();
            if (capacity !== undefined && isLocal(ps.type)) {
              await tx
                .updateTable('primaryStorageHosts')
                .set({ capacityTotal: capacity })
                .where('primaryStorageUuid', '=', ps.uuid)
                .execute();
            }
            batch.add({
              ...resourceEvent(primaryStorageFamily, ps, 'updated', ctx.params.changes),
              jobUuid: ctx.job.uuid,
            });
          });
        } catch (err) {
          throw mapUnique(
            err,
            'PRIMARY_STORAGE_NAME_TAKEN',
            'a primary storage with this name already exists',
          );
        }
      },
    },
  ],
  result,
};

export interface ClusterParams {
  uuid: string;
  clusterUuid: string;
}

/** The cluster exists and is in the storage's zone (checked at admission and in the step). */
export function checkCluster(
  exec: Executor,
  owner: { uuid: string; zoneUuid: string },
  clusterUuid: string,
): Promise<void> {
  return assertClusterInZone(exec, owner, clusterUuid, 'primary storage', 'PRIMARY_STORAGE_ZONE_MISMATCH');
}

export const attachClusterFlow: FlowDef<ClusterParams, FlowDeps> = {
  kind: 'primary-storage.attach-cluster',
  recovery: 'resume',
  steps: [
    {
      name: 'attach',
      describe: 'attach the primary storage to the cluster',
      async run(ctx) {
        const { uuid, clusterUuid } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const ps = await storageFor(tx, uuid);
          await checkCluster(tx, ps, clusterUuid);
          const res = await tx
            .insertInto('primaryStorageClusters')
            .values({ primaryStorageUuid: uuid, clusterUuid })
            .onConflict((oc) => oc.columns(['primaryStorageUuid', 'clusterUuid']).doNothing())
            .executeTakeFirst();
          // shares also when already attached: a retried attach completes one that stopped half-way
          const shares = isLocal(ps.type)
            ? await addClusterShares(tx, { uuid, capacity: ps.capacityTotal }, clusterUuid)
            : 0;
          if (Number(res.numInsertedOrUpdatedRows ?? 0) > 0 || shares > 0) {
            batch.add({
              ...resourceEvent(primaryStorageFamily, ps, 'cluster.attached', {
                clusterUuid,
                hostShares: shares,
              }),
              jobUuid: ctx.job.uuid,
            });
          }
        });
      },
    },
  ],
  result,
};

/**
 * Volumes that keep a cluster on the storage: those of VMs in the cluster and, for local
 * storage, any volume on one of the cluster's hosts.
 */
async function volumesInCluster(
  tx: Tx,
  ps: { uuid: string; type: string },
  clusterUuid: string,
): Promise<number> {
  const row = await tx
    .selectFrom('volumes as v')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('v.primaryStorageUuid', '=', ps.uuid)
    .where((eb) =>
      eb.or([
        eb('v.vmUuid', 'in', eb.selectFrom('vms').select('uuid').where('clusterUuid', '=', clusterUuid)),
        ...(isLocal(ps.type)
          ? [
              eb(
                'v.hostUuid',
                'in',
                eb.selectFrom('hosts').select('uuid').where('clusterUuid', '=', clusterUuid),
              ),
            ]
          : []),
      ]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export const detachClusterFlow: FlowDef<ClusterParams, FlowDeps> = {
  kind: 'primary-storage.detach-cluster',
  recovery: 'resume',
  steps: [
    {
      name: 'detach',
      describe: 'detach the primary storage from the cluster',
      async run(ctx) {
        const { uuid, clusterUuid } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const ps = await storageFor(tx, uuid);
          // keeps hosts from joining the cluster (and getting a share) while it is detached
          await tx
            .selectFrom('clusters')
            .select('uuid')
            .where('uuid', '=', clusterUuid)
            .forNoKeyUpdate()
            .execute();
          const volumes = await volumesInCluster(tx, ps, clusterUuid);
          if (volumes > 0) {
            throw new CloudError(
              'Conflict',
              'PRIMARY_STORAGE_IN_USE',
              `${volumes} volume(s) of cluster ${clusterUuid} are on primary storage ${uuid}; delete or move them first`,
              { details: { volumes, clusterUuid } },
            );
          }
          const res = await tx
            .deleteFrom('primaryStorageClusters')
            .where('primaryStorageUuid', '=', uuid)
            .where('clusterUuid', '=', clusterUuid)
            .executeTakeFirst();
          if (isLocal(ps.type)) {
            // the cluster's hosts no longer hold this storage: their shares and cached copies go
            // from the records (the copies left on the hosts' disks are reused if it comes back)
            const hosts = tx.selectFrom('hosts').select('uuid').where('clusterUuid', '=', clusterUuid);
            await tx
              .deleteFrom('imageCache')
              .where('primaryStorageUuid', '=', uuid)
              .where('hostUuid', 'in', hosts)
              .execute();
            await tx
              .deleteFrom('primaryStorageHosts')
              .where('primaryStorageUuid', '=', uuid)
              .where('hostUuid', 'in', hosts)
              .execute();
          }
          if (Number(res.numDeletedRows) > 0)
            batch.add({
              ...resourceEvent(primaryStorageFamily, ps, 'cluster.detached', { clusterUuid }),
              jobUuid: ctx.job.uuid,
            });
        });
      },
    },
  ],
  result,
};

export const cleanImageCacheFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'primary-storage.clean-image-cache',
  recovery: 'resume',
  steps: [
    {
      name: 'clean',
      describe: 'remove cached images no volume uses',
      async run(ctx) {
        const entries = await ctx.db
          .selectFrom('imageCache')
          .select('uuid')
          .where('primaryStorageUuid', '=', ctx.params.uuid)
          .execute();
        let removed = 0;
        for (const e of entries) {
          if (
            await removeImageCacheEntry(ctx.db, ctx.deps.drivers, e.uuid, {
              includeShared: true,
              jobUuid: ctx.job.uuid,
            })
          )
            removed++;
        }
        ctx.data.removed = removed;
        ctx.data.kept = entries.length - removed;
      },
    },
  ],
  result: async (ctx) => ({ removed: ctx.data.removed, kept: ctx.data.kept }),
};
