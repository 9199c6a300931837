/**
 * Where a volume goes and which host speaks for its storage.
 *
 * Placement happens in the admitting transaction: candidates (Enabled storages a Connected host
 * reaches, with room) are tried in order of free space, each with reserveStorage's conditional
 * UPDATE, so concurrent creates never over-commit and a refusal is answered at once. Local
 * storage is a per-host share: the volume is bound to that host for life.
 */
import { sql } from 'kysely';
import type { Executor, Tx } from '../../../db/transaction.js';
import type { HostAddress } from '../../../drivers/port.js';
import { CloudError } from '../../../kernel/errors.js';
import { isLocal, reserveStorage, type StorageTarget } from '../primary-storage/capacity.js';

const GiB = 1024 ** 3;
const human = (bytes: number) =>
  bytes >= GiB ? `${+(bytes / GiB).toFixed(2)} GiB` : `${+(bytes / 1024 ** 2).toFixed(2)} MiB`;

/** candidates tried per placement: enough to ride out races, bounded so a full cloud fails fast */
const MAX_TRIES = 8;

export interface PlacementRequest {
  size: number;
  primaryStorageUuid?: string;
  /** the VM the volume will be attached to: its cluster must reach the storage (its host, for local) */
  vm?: { uuid: string; clusterUuid: string | null; hostUuid: string | null };
}

interface Candidate extends StorageTarget {
  free: number;
}

function candidates(tx: Tx, r: PlacementRequest) {
  const shared = tx
    .selectFrom('primaryStorages as p')
    .select([
      'p.uuid as primaryStorageUuid',
      sql<string | null>`null::uuid`.as('hostUuid'),
      sql<number>`(p.capacity_total * p.over_provisioning_ratio - p.capacity_used)::float8`.as('free'),
    ])
    .where('p.state', '=', 'Enabled')
    .where('p.type', '!=', 'local')
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('primaryStorageClusters as c')
          .innerJoin('hosts as h', 'h.clusterUuid', 'c.clusterUuid')
          .select('h.uuid')
          .whereRef('c.primaryStorageUuid', '=', 'p.uuid')
          .where('h.status', '=', 'Connected')
          .$if(r.vm !== undefined, (q) => q.where('c.clusterUuid', '=', r.vm?.clusterUuid ?? null)),
      ),
    )
    .where(sql<boolean>`p.capacity_total * p.over_provisioning_ratio - p.capacity_used >= ${r.size}`)
    .$if(r.primaryStorageUuid !== undefined, (q) => q.where('p.uuid', '=', r.primaryStorageUuid!));
  const local = tx
    .selectFrom('primaryStorageHosts as s')
    .innerJoin('primaryStorages as p', 'p.uuid', 's.primaryStorageUuid')
    .innerJoin('hosts as h', 'h.uuid', 's.hostUuid')
    .select([
      'p.uuid as primaryStorageUuid',
      's.hostUuid as hostUuid',
      sql<number>`(s.capacity_total * p.over_provisioning_ratio - s.capacity_used)::float8`.as('free'),
    ])
    .where('p.state', '=', 'Enabled')
    .where('p.type', '=', 'local')
    .where('h.status', '=', 'Connected')
    .where(sql<boolean>`s.capacity_total * p.over_provisioning_ratio - s.capacity_used >= ${r.size}`)
    .$if(r.primaryStorageUuid !== undefined, (q) => q.where('p.uuid', '=', r.primaryStorageUuid!))
    .$if(r.vm !== undefined, (q) => q.where('s.hostUuid', '=', r.vm?.hostUuid ?? null));
  return shared.unionAll(local).orderBy('free', 'desc').limit(MAX_TRIES);
}

/** Picks and reserves room for a volume inside `tx`, or throws why nothing fits. */
export async function placeVolume(tx: Tx, r: PlacementRequest): Promise<StorageTarget> {
  const found = (await candidates(tx, r).execute()) as Candidate[];
  for (const c of found) {
    const target = { primaryStorageUuid: c.primaryStorageUuid, hostUuid: c.hostUuid };
    if (await reserveStorage(tx, target, r.size)) return target;
  }
  throw await whyNoRoom(tx, r);
}

async function whyNoRoom(exec: Executor, r: PlacementRequest): Promise<CloudError> {
  const where = r.vm ? ` reachable from vm ${r.vm.uuid}` : '';
  if (r.primaryStorageUuid) {
    const ps = await exec
      .selectFrom('primaryStorages')
      .select(['uuid', 'state', 'type'])
      .where('uuid', '=', r.primaryStorageUuid)
      .executeTakeFirst();
    if (!ps) {
      return new CloudError(
        'Invalid',
        'PRIMARY_STORAGE_NOT_FOUND',
        `no primary storage ${r.primaryStorageUuid}`,
        {
          details: { fields: [{ field: 'primaryStorageUuid', problem: 'no such primary storage' }] },
        },
      );
    }
    if (ps.state !== 'Enabled') {
      return new CloudError(
        'Conflict',
        'PRIMARY_STORAGE_NOT_ENABLED',
        `primary storage ${ps.uuid} is ${ps.state}`,
        {
          details: { state: ps.state },
        },
      );
    }
    return new CloudError(
      'Conflict',
      'PRIMARY_STORAGE_FULL',
      `primary storage ${ps.uuid}${isLocal(ps.type) ? ' (local: on every host share)' : ''} has no room for ${human(r.size)}${where}, or no Connected host reaches it`,
      { details: { primaryStorageUuid: ps.uuid, size: r.size } },
    );
  }
  return new CloudError(
    'Conflict',
    'PRIMARY_STORAGE_FULL',
    `no Enabled primary storage${where} reached by a Connected host has ${human(r.size)} free`,
    { details: { size: r.size, ...(r.vm ? { vmUuid: r.vm.uuid } : {}) } },
  );
}

/**
 * The host that runs storage commands for a volume: its own host on local storage; else the host
 * of the VM it is attached to when that VM is placed on a Connected host; else any Connected host
 * of a cluster the storage is attached to.
 */
export async function storageHost(
  exec: Executor,
  volume: { primaryStorageUuid: string | null; hostUuid: string | null; vmUuid: string | null },
): Promise<HostAddress> {
  const pick = ['h.uuid', 'h.managementIp', 'h.hypervisorType', 'h.status'] as const;
  if (volume.hostUuid) {
    const h = await exec
      .selectFrom('hosts as h')
      .select(pick)
      .where('h.uuid', '=', volume.hostUuid)
      .executeTakeFirst();
    if (h?.status === 'Connected')
      return { uuid: h.uuid, managementIp: h.managementIp, hypervisorType: h.hypervisorType };
    throw new CloudError(
      'Unavailable',
      'HOST_UNAVAILABLE',
      `host ${volume.hostUuid} holding the volume (local storage) is ${h?.status ?? 'gone'}`,
      { details: { hostUuid: volume.hostUuid, status: h?.status ?? null }, retryable: true },
    );
  }
  if (volume.vmUuid) {
    const h = await exec
      .selectFrom('vms as v')
      .innerJoin('hosts as h', 'h.uuid', 'v.hostUuid')
      .select(pick)
      .where('v.uuid', '=', volume.vmUuid)
      .where('h.status', '=', 'Connected')
      .executeTakeFirst();
    if (h) return { uuid: h.uuid, managementIp: h.managementIp, hypervisorType: h.hypervisorType };
  }
  const h = await exec
    .selectFrom('primaryStorageClusters as c')
    .innerJoin('hosts as h', 'h.clusterUuid', 'c.clusterUuid')
    .select(pick)
    .where('c.primaryStorageUuid', '=', volume.primaryStorageUuid ?? '00000000-0000-0000-0000-000000000000')
    .where('h.status', '=', 'Connected')
    .orderBy(sql`random()`)
    .limit(1)
    .executeTakeFirst();
  if (h) return { uuid: h.uuid, managementIp: h.managementIp, hypervisorType: h.hypervisorType };
  throw new CloudError(
    'Unavailable',
    'PRIMARY_STORAGE_UNREACHABLE',
    `no Connected host reaches primary storage ${volume.primaryStorageUuid}`,
    { details: { primaryStorageUuid: volume.primaryStorageUuid }, retryable: true },
  );
}
