/**
 * Primary-storage capacity: reserved and released by single conditional UPDATEs, never
 * read-then-write. Local storage is accounted per host (`primary_storage_hosts`), so VMs on
 * different hosts never contend for one row; shared storage (nfs, shared-mount, ceph) has one
 * row per storage. `used` may reach `total × overProvisioningRatio`.
 */
import { type RawBuilder, sql } from 'kysely';
import type { StorageRef } from '../../../contract/agent.js';
import type { Executor } from '../../../db/transaction.js';
import { CloudError } from '../../../kernel/errors.js';

export interface StorageTarget {
  primaryStorageUuid: string;
  /** the host whose share of a local storage is used; null for shared storage */
  hostUuid: string | null;
}

/** Reserves `size` bytes; false when it does not fit or the storage is not Enabled. */
export async function reserveStorage(exec: Executor, target: StorageTarget, size: number): Promise<boolean> {
  if (size < 0) throw new Error('reserveStorage: negative size');
  if (target.hostUuid) {
    const res = await exec
      .updateTable('primaryStorageHosts as h')
      .set({ capacityUsed: sql`h.capacity_used + ${size}` })
      .where('h.primaryStorageUuid', '=', target.primaryStorageUuid)
      .where('h.hostUuid', '=', target.hostUuid)
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('primaryStorages as p')
            .select('p.uuid')
            .whereRef('p.uuid', '=', 'h.primaryStorageUuid')
            .where('p.state', '=', 'Enabled')
            .where(sql<boolean>`h.capacity_used + ${size} <= h.capacity_total * p.over_provisioning_ratio`),
        ),
      )
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
  const res = await exec
    .updateTable('primaryStorages')
    .set({ capacityUsed: sql`capacity_used + ${size}`, updatedAt: new Date() })
    .where('uuid', '=', target.primaryStorageUuid)
    .where('state', '=', 'Enabled')
    .where(sql<boolean>`capacity_used + ${size} <= capacity_total * over_provisioning_ratio`)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * reserveStorage's conditional UPDATE as a SQL fragment, for a single statement that reserves and
 * records at once (a CTE); it returns one row (`primary_storage_uuid`) when the bytes were
 * reserved. `unless` is an extra SQL condition (e.g. the record does not exist yet).
 */
export function reserveStorageSql(target: StorageTarget, size: number, unless: RawBuilder<unknown>) {
  if (size < 0) throw new Error('reserveStorage: negative size');
  if (target.hostUuid)
    return sql`update primary_storage_hosts h set capacity_used = h.capacity_used + ${size}
      where h.primary_storage_uuid = ${target.primaryStorageUuid} and h.host_uuid = ${target.hostUuid}
        and exists (select 1 from primary_storages p where p.uuid = h.primary_storage_uuid
          and p.state = 'Enabled' and h.capacity_used + ${size} <= h.capacity_total * p.over_provisioning_ratio)
        and not (${unless})
      returning h.primary_storage_uuid`;
  return sql`update primary_storages set capacity_used = capacity_used + ${size}, updated_at = ${new Date()}
    where uuid = ${target.primaryStorageUuid} and state = 'Enabled'
      and capacity_used + ${size} <= capacity_total * over_provisioning_ratio
      and not (${unless})
    returning uuid as primary_storage_uuid`;
}

/** Gives `size` bytes back (never below zero). Callers journal what they reserved, so a rollback releases exactly that. */
export async function releaseStorage(exec: Executor, target: StorageTarget, size: number): Promise<void> {
  if (target.hostUuid) {
    await exec
      .updateTable('primaryStorageHosts')
      .set({ capacityUsed: sql`greatest(capacity_used - ${size}, 0)` })
      .where('primaryStorageUuid', '=', target.primaryStorageUuid)
      .where('hostUuid', '=', target.hostUuid)
      .execute();
    return;
  }
  await exec
    .updateTable('primaryStorages')
    .set({ capacityUsed: sql`greatest(capacity_used - ${size}, 0)`, updatedAt: new Date() })
    .where('uuid', '=', target.primaryStorageUuid)
    .execute();
}

/** How a host addresses the storage in commands. */
export async function storageRef(exec: Executor, primaryStorageUuid: string): Promise<StorageRef> {
  const ps = await exec
    .selectFrom('primaryStorages')
    .select(['uuid', 'type', 'url'])
    .where('uuid', '=', primaryStorageUuid)
    .executeTakeFirst();
  if (!ps)
    throw new CloudError(
      'NotFound',
      'PRIMARY_STORAGE_NOT_FOUND',
      `primary storage ${primaryStorageUuid} not found`,
    );
  return { uuid: ps.uuid, type: ps.type, url: ps.url };
}

/** Local storage binds a volume to one host; every other type is shared by the clusters it is attached to. */
export function isLocal(type: string): boolean {
  return type === 'local';
}
