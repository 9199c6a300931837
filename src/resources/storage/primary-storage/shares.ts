/**
 * Local storage is a disk in each host: attached to a cluster, it gives every host of the cluster
 * a share of `capacity` bytes (one `primary_storage_hosts` row each), reserved row by row.
 * Shares are created when the storage is attached (for the hosts already there) and when a host
 * joins a cluster the storage is attached to (the host chain calls ensureLocalStorageShares), and
 * go with the host (foreign key) or the detach.
 *
 * Attach and host-join can run at the same moment; each takes a lock on the cluster row first
 * (attach: FOR NO KEY UPDATE, host-join: FOR SHARE, which conflict), so one of them always sees
 * the other's committed rows and no host is left without its share. Neither lock blocks host
 * inserts (their foreign-key check takes FOR KEY SHARE).
 */
import { sql } from 'kysely';
import type { Executor, Tx } from '../../../db/transaction.js';

function inTx<T>(exec: Executor, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return exec.isTransaction ? fn(exec as Tx) : exec.transaction().execute(fn);
}

/**
 * Gives a host its share of every local storage attached to its cluster (idempotent: existing
 * shares are kept as they are). Returns how many shares it created.
 */
export async function ensureLocalStorageShares(exec: Executor, hostUuid: string): Promise<number> {
  return inTx(exec, async (tx) => {
    const host = await tx
      .selectFrom('hosts')
      .select('clusterUuid')
      .where('uuid', '=', hostUuid)
      .executeTakeFirst();
    if (!host) return 0;
    await tx.selectFrom('clusters').select('uuid').where('uuid', '=', host.clusterUuid).forShare().execute();
    const res = await tx
      .insertInto('primaryStorageHosts')
      .columns(['primaryStorageUuid', 'hostUuid', 'capacityTotal'])
      .expression((eb) =>
        eb
          .selectFrom('primaryStorageClusters as pc')
          .innerJoin('primaryStorages as p', 'p.uuid', 'pc.primaryStorageUuid')
          .select(['p.uuid', sql<string>`${hostUuid}::uuid`.as('hostUuid'), 'p.capacityTotal'])
          .where('pc.clusterUuid', '=', host.clusterUuid)
          .where('p.type', '=', 'local'),
      )
      .onConflict((oc) => oc.columns(['primaryStorageUuid', 'hostUuid']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0);
  });
}

/** Gives every host of the cluster its share of a local storage (inside the attach transaction). */
export async function addClusterShares(
  tx: Tx,
  storage: { uuid: string; capacity: number },
  clusterUuid: string,
): Promise<number> {
  await tx.selectFrom('clusters').select('uuid').where('uuid', '=', clusterUuid).forNoKeyUpdate().execute();
  const res = await tx
    .insertInto('primaryStorageHosts')
    .columns(['primaryStorageUuid', 'hostUuid', 'capacityTotal'])
    .expression((eb) =>
      eb
        .selectFrom('hosts')
        .select([
          sql<string>`${storage.uuid}::uuid`.as('primaryStorageUuid'),
          'uuid',
          sql<number>`${storage.capacity}::bigint`.as('capacityTotal'),
        ])
        .where('clusterUuid', '=', clusterUuid),
    )
    .onConflict((oc) => oc.columns(['primaryStorageUuid', 'hostUuid']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0);
}
