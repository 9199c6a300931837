/**
 * Making and unmaking volumes on storage: the API the VM chains use for root and data disks,
 * and what the volumes kind's own chains use underneath.
 *
 * Capacity: the row and its reservation are written and removed in one transaction each (see
 * model.ts). Quotas are not touched for the volume itself — the caller that admitted the volume
 * reserved them and its expunge releases them (`volumeQuota`) — but the snapshots destroyVolume
 * removes give their `snapshot.num` back, since only this family ever creates them.
 */

import { sql } from 'kysely';
import type { StorageRef } from '../../../contract/agent.js';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { DriverRegistry, HostAddress } from '../../../drivers/port.js';
import { CloudError } from '../../../kernel/errors.js';
import { accountOf, releaseQuota } from '../../identity/quota/quota.js';
import { releaseStorage, reserveStorageSql, storageRef } from '../primary-storage/capacity.js';
import { type VolumeRow, volumeQuota } from './model.js';
import { storageHost } from './placement.js';

export type { VolumeRow } from './model.js';

export interface VolumeSpec {
  uuid: string;
  name: string;
  accountUuid: string;
  type: 'Root' | 'Data';
  size: number;
  format: string;
  primaryStorageUuid: string;
  /** local storage: the host whose share holds it */
  hostUuid: string | null;
  /** runs the commands */
  host: HostAddress;
  vmUuid: string | null;
  deviceId: number | null;
  diskOfferingUuid: string | null;
  imageUuid: string | null;
  fromImageCachePath?: string;
  deleteWithVm: boolean;
}

function full(spec: VolumeSpec): CloudError {
  return new CloudError(
    'Conflict',
    'PRIMARY_STORAGE_FULL',
    `primary storage ${spec.primaryStorageUuid}${spec.hostUuid ? ` (share of host ${spec.hostUuid})` : ''} has no room for ${spec.size} bytes or is not Enabled`,
    { details: { primaryStorageUuid: spec.primaryStorageUuid, hostUuid: spec.hostUuid, size: spec.size } },
  );
}

/**
 * Reserves capacity (reserveStorage), records the volume (state Creating), asks the host to create
 * it (volume.create), marks it Ready with its path/actualSize. Idempotent on spec.uuid (a Ready
 * volume is returned as is). Throws PRIMARY_STORAGE_FULL when it does not fit. On a failure after
 * the record, the row stays Creating: the caller's rollback calls destroyVolume.
 */
export async function provisionVolume(db: Db, drivers: DriverRegistry, spec: VolumeSpec): Promise<VolumeRow> {
  const recorded = await reserveAndRecord(db, spec);
  if (recorded.state !== 'Creating') return recorded;
  const created = await drivers.send(spec.host, 'volume.create', {
    volumeUuid: spec.uuid,
    size: recorded.size,
    format: recorded.format,
    storage: recorded.storage ?? (await storageRef(db, spec.primaryStorageUuid)),
    ...(spec.fromImageCachePath ? { fromImageCachePath: spec.fromImageCachePath } : {}),
  });
  const ready = await db
    .updateTable('volumes')
    .set({ state: 'Ready', path: created.path, actualSize: created.actualSize, updatedAt: new Date() })
    .where('uuid', '=', spec.uuid)
    .where('state', '=', 'Creating')
    .returningAll()
    .executeTakeFirst();
  return (
    ready ??
    (await db.selectFrom('volumes').selectAll().where('uuid', '=', spec.uuid).executeTakeFirstOrThrow())
  );
}

/**
 * The capacity reservation, the row (state Creating, in the storage's format: volumeFormatOn) and
 * the storage's address in one statement
 * (it was a transaction of four round trips and a read): the insert takes its row from the
 * reservation, so there is a row exactly when the bytes were reserved. No row back means the
 * volume exists already (a re-run: it is returned as it is) or the storage has no room.
 */
async function reserveAndRecord(db: Db, spec: VolumeSpec): Promise<VolumeRow & { storage?: StorageRef }> {
  const target = { primaryStorageUuid: spec.primaryStorageUuid, hostUuid: spec.hostUuid };
  const exists = sql`exists (select 1 from volumes where uuid = ${spec.uuid})`;
  const res = await sql<VolumeRow & { storageType: StorageRef['type']; storageUrl: string }>`
    with r as (${reserveStorageSql(target, spec.size, exists)}), v as (
      insert into volumes (uuid, name, account_uuid, type, vm_uuid, device_id, primary_storage_uuid,
        host_uuid, disk_offering_uuid, image_uuid, size, format, state, delete_with_vm)
      select ${spec.uuid}::uuid, ${spec.name}::text, ${spec.accountUuid}::uuid, ${spec.type}::text,
        ${spec.vmUuid}::uuid, ${spec.deviceId}::integer, r.primary_storage_uuid, ${spec.hostUuid}::uuid,
        ${spec.diskOfferingUuid}::uuid, ${spec.imageUuid}::uuid, ${spec.size}::bigint,
        case when p.type = 'ceph' then 'raw' else ${spec.format}::text end,
        'Creating', ${spec.deleteWithVm}::boolean
      from r join primary_storages p on p.uuid = r.primary_storage_uuid
      returning *
    )
    select v.*, p.type as storage_type, p.url as storage_url
    from v join primary_storages p on p.uuid = v.primary_storage_uuid`.execute(db);
  const row = res.rows[0];
  if (row) {
    const { storageType, storageUrl, ...volume } = row;
    return { ...volume, storage: { uuid: spec.primaryStorageUuid, type: storageType, url: storageUrl } };
  }
  const existing = await db
    .selectFrom('volumes')
    .selectAll()
    .where('uuid', '=', spec.uuid)
    .executeTakeFirst();
  if (existing) return existing;
  throw full(spec);
}

/**
 * The undo and the expunge: deletes it on the storage (volume.delete), releases capacity, removes
 * its snapshots' records and its row. Idempotent: a missing volume is success.
 */
export async function destroyVolume(db: Db, drivers: DriverRegistry, volumeUuid: string): Promise<void> {
  const volume = await db.selectFrom('volumes').selectAll().where('uuid', '=', volumeUuid).executeTakeFirst();
  if (!volume) return;
  await deleteOnStorage(db, drivers, volume);
  await removeVolumeRecord(db, volumeUuid, { releaseVolumeQuota: false });
}

/** Deletes the volume's snapshots and then the volume on its storage (each command is idempotent). */
export async function deleteOnStorage(db: Db, drivers: DriverRegistry, volume: VolumeRow): Promise<void> {
  if (!volume.primaryStorageUuid) return;
  const host = await storageHost(db, volume);
  const storage = await storageRef(db, volume.primaryStorageUuid);
  const snapshots = await db
    .selectFrom('volumeSnapshots')
    .select('uuid')
    .where('volumeUuid', '=', volume.uuid)
    .orderBy('createdAt', 'desc')
    .execute();
  for (const s of snapshots) await drivers.send(host, 'snapshot.delete', { snapshotUuid: s.uuid, storage });
  await drivers.send(host, 'volume.delete', { volumeUuid: volume.uuid, storage });
}

/**
 * Removes the row, its snapshots' rows (giving their snapshot.num back) and its capacity in one
 * transaction; with `releaseVolumeQuota` also the volume's own quota (the volumes kind's expunge).
 * Returns the removed row, or undefined when it was already gone.
 */
export async function removeVolumeRecord(
  db: Db,
  volumeUuid: string,
  o: { releaseVolumeQuota: boolean; before?: (tx: Tx, volume: VolumeRow) => Promise<void> },
): Promise<VolumeRow | undefined> {
  return db.transaction().execute(async (tx) => {
    const volume = await tx
      .selectFrom('volumes')
      .selectAll()
      .where('uuid', '=', volumeUuid)
      .forUpdate()
      .executeTakeFirst();
    if (!volume) return undefined;
    await o.before?.(tx, volume);
    // the tree's parent links restrict deletes row by row: cut them, then remove the lot
    await tx
      .updateTable('volumeSnapshots')
      .set({ parentUuid: null })
      .where('volumeUuid', '=', volumeUuid)
      .execute();
    const snaps = await tx
      .deleteFrom('volumeSnapshots')
      .where('volumeUuid', '=', volumeUuid)
      .returning(['uuid', 'accountUuid'])
      .execute();
    const perAccount = new Map<string, number>();
    for (const s of snaps) perAccount.set(s.accountUuid, (perAccount.get(s.accountUuid) ?? 0) + 1);
    for (const [account, n] of perAccount)
      await releaseQuota(tx, await accountOf(tx, account), { 'snapshot.num': n });
    await tx
      .deleteFrom('tags')
      .where('resourceUuid', 'in', [volumeUuid, ...snaps.map((s) => s.uuid)])
      .execute();
    await tx.deleteFrom('volumes').where('uuid', '=', volumeUuid).execute();
    if (volume.primaryStorageUuid) {
      await releaseStorage(
        tx,
        { primaryStorageUuid: volume.primaryStorageUuid, hostUuid: volume.hostUuid },
        volume.size,
      );
    }
    if (o.releaseVolumeQuota)
      await releaseQuota(tx, await accountOf(tx, volume.accountUuid), volumeQuota(volume));
    return volume;
  });
}
