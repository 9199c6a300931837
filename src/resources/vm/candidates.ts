/**
 * The scheduler's candidate hosts, kept in memory so a placement never reads every host row:
 * a snapshot of hosts (with cluster and zone state), the primary storages each reaches (local
 * storage: the host's own share) and where images are cached, reloaded in the background at
 * most every `maxAgeMs` and adjusted locally after this node's own reservations. It is a guide
 * only: the conditional reservation UPDATE is the truth, so a stale snapshot costs a retry on
 * the next host, never an over-commit.
 *
 * `hasImageCached` depends on the image, so each image gets a view: view hosts and storages
 * inherit (prototype) from the snapshot's objects and override only their storages and that
 * flag, so local capacity updates to the snapshot are seen through every view at no cost.
 */
import type { Db } from '../../db/pool.js';
import type { HostAddress } from '../../drivers/port.js';
import type { HostCandidate, StorageCandidate } from '../../scheduler/index.js';

export interface Snapshot {
  loadedAt: number;
  hosts: HostCandidate[];
  byUuid: Map<string, HostCandidate>;
  addresses: Map<string, HostAddress>;
  /** storage objects by `${ps}/${host}` (local) or `${ps}/` (shared) */
  storages: Map<string, StorageCandidate>;
  /** cached images by `${ps}/${host or ''}/${image}` */
  cached: Set<string>;
  views: Map<string, HostCandidate[]>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const storageKey = (ps: string, host: string | null) => `${ps}/${host ?? ''}`;

export class CandidateSnapshot {
  private current: Snapshot | undefined;
  private loading: Promise<Snapshot> | undefined;

  constructor(
    private readonly db: Db,
    private readonly maxAgeMs = 500,
  ) {}

  /** The candidates for a VM of `imageUuid`; reloads in the background when stale. */
  async view(imageUuid: string): Promise<HostCandidate[]> {
    const snap = await this.snapshot();
    return viewOf(snap, imageUuid);
  }

  /** Waits for a snapshot loaded after this call (or one already loading), then the view. */
  async freshView(imageUuid: string): Promise<HostCandidate[]> {
    return viewOf(await this.reload(), imageUuid);
  }

  /** How to address a host in commands, if the snapshot knows it. */
  address(hostUuid: string): HostAddress | undefined {
    return this.current?.addresses.get(hostUuid);
  }

  /** After a reservation (+1) or release (−1) this node made: keep the guide close to the truth. */
  onHostCapacity(hostUuid: string, cpu: number, memory: number, sign: 1 | -1): void {
    const host = this.current?.byUuid.get(hostUuid) as Mutable<HostCandidate> | undefined;
    if (!host) return;
    host.cpuUsed += sign * cpu;
    host.memoryUsed += sign * memory;
    host.vmCount += sign;
  }

  onStorageUsed(primaryStorageUuid: string, hostUuid: string | null, bytes: number): void {
    const snap = this.current;
    if (!snap) return;
    const ps = (snap.storages.get(storageKey(primaryStorageUuid, hostUuid)) ??
      snap.storages.get(storageKey(primaryStorageUuid, null))) as Mutable<StorageCandidate> | undefined;
    if (ps) ps.capacityUsed += bytes;
  }

  onImageCached(primaryStorageUuid: string, hostUuid: string | null, imageUuid: string): void {
    const snap = this.current;
    if (!snap) return;
    const key = `${storageKey(primaryStorageUuid, hostUuid)}/${imageUuid}`;
    if (snap.cached.has(key)) return;
    snap.cached.add(key);
    snap.views.delete(imageUuid);
  }

  private async snapshot(): Promise<Snapshot> {
    const snap = this.current;
    if (!snap) return this.reload();
    if (Date.now() - snap.loadedAt > this.maxAgeMs && !this.loading) void this.reload().catch(() => {});
    return snap;
  }

  private reload(): Promise<Snapshot> {
    if (!this.loading) {
      this.loading = load(this.db)
        .then((snap) => {
          this.current = snap;
          return snap;
        })
        .finally(() => {
          this.loading = undefined;
        });
    }
    return this.loading;
  }
}

export function viewOf(snap: Snapshot, imageUuid: string): HostCandidate[] {
  let view = snap.views.get(imageUuid);
  if (view) return view;
  const storageViews = new Map<StorageCandidate, StorageCandidate>();
  const storageView = (ps: StorageCandidate, hostUuid: string): StorageCandidate => {
    let v = storageViews.get(ps);
    if (!v) {
      const local = ps.type === 'local';
      const cached = snap.cached.has(`${storageKey(ps.uuid, local ? hostUuid : null)}/${imageUuid}`);
      v = Object.create(ps, { hasImageCached: { value: cached, enumerable: true } }) as StorageCandidate;
      storageViews.set(ps, v);
    }
    return v;
  };
  view = snap.hosts.map(
    (h) =>
      Object.create(h, {
        primaryStorages: { value: h.primaryStorages.map((ps) => storageView(ps, h.uuid)), enumerable: true },
      }) as HostCandidate,
  );
  snap.views.set(imageUuid, view);
  return view;
}

async function load(db: Db): Promise<Snapshot> {
  const startedAt = Date.now();
  const [hosts, attached, shares, cached] = await Promise.all([
    db
      .selectFrom('hosts as h')
      .innerJoin('clusters as c', 'c.uuid', 'h.clusterUuid')
      .innerJoin('zones as z', 'z.uuid', 'h.zoneUuid')
      .select([
        'h.uuid',
        'h.name',
        'h.zoneUuid',
        'h.clusterUuid',
        'h.hypervisorType',
        'h.managementIp',
        'h.state',
        'h.status',
        'h.cpuTotal',
        'h.cpuUsed',
        'h.memoryTotal',
        'h.memoryUsed',
        'h.vmCount',
        'c.state as clusterState',
        'c.name as clusterName',
        'z.state as zoneState',
        'z.name as zoneName',
      ])
      .execute(),
    db
      .selectFrom('primaryStorageClusters as a')
      .innerJoin('primaryStorages as p', 'p.uuid', 'a.primaryStorageUuid')
      .select([
        'a.clusterUuid',
        'p.uuid',
        'p.type',
        'p.state',
        'p.status',
        'p.capacityTotal',
        'p.capacityUsed',
        'p.overProvisioningRatio',
      ])
      .execute(),
    db.selectFrom('primaryStorageHosts').selectAll().execute(),
    db
      .selectFrom('imageCache')
      .select(['primaryStorageUuid', 'hostUuid', 'imageUuid'])
      .where('state', '=', 'Ready')
      .execute(),
  ]);
  const storages = new Map<string, StorageCandidate>();
  const byCluster = new Map<string, typeof attached>();
  for (const a of attached) {
    const list = byCluster.get(a.clusterUuid) ?? [];
    list.push(a);
    byCluster.set(a.clusterUuid, list);
    if (a.type !== 'local' && !storages.has(storageKey(a.uuid, null))) {
      storages.set(storageKey(a.uuid, null), storageOf(a, a.capacityTotal, a.capacityUsed));
    }
  }
  const shareOf = new Map(shares.map((s) => [storageKey(s.primaryStorageUuid, s.hostUuid), s]));
  const candidates: HostCandidate[] = [];
  const addresses = new Map<string, HostAddress>();
  for (const h of hosts) {
    const reached: StorageCandidate[] = [];
    for (const a of byCluster.get(h.clusterUuid) ?? []) {
      if (a.type !== 'local') {
        reached.push(storages.get(storageKey(a.uuid, null))!);
        continue;
      }
      // a local storage reaches a host only through the host's own share of it
      const share = shareOf.get(storageKey(a.uuid, h.uuid));
      if (!share) continue;
      const ps = storageOf(a, share.capacityTotal, share.capacityUsed);
      storages.set(storageKey(a.uuid, h.uuid), ps);
      reached.push(ps);
    }
    candidates.push({
      uuid: h.uuid,
      name: h.name,
      zoneUuid: h.zoneUuid,
      clusterUuid: h.clusterUuid,
      hypervisorType: h.hypervisorType,
      state: h.state,
      status: h.status,
      cluster: { state: h.clusterState, zoneState: h.zoneState, name: h.clusterName, zoneName: h.zoneName },
      cpuTotal: h.cpuTotal,
      cpuUsed: h.cpuUsed,
      memoryTotal: h.memoryTotal,
      memoryUsed: h.memoryUsed,
      vmCount: h.vmCount,
      l2NetworkUuids: [],
      primaryStorages: reached,
    });
    addresses.set(h.uuid, { uuid: h.uuid, managementIp: h.managementIp, hypervisorType: h.hypervisorType });
  }
  return {
    loadedAt: startedAt,
    hosts: candidates,
    byUuid: new Map(candidates.map((c) => [c.uuid, c])),
    addresses,
    storages,
    cached: new Set(cached.map((c) => `${storageKey(c.primaryStorageUuid, c.hostUuid)}/${c.imageUuid}`)),
    views: new Map(),
  };
}

function storageOf(
  a: {
    uuid: string;
    type: StorageCandidate['type'];
    state: StorageCandidate['state'];
    status: StorageCandidate['status'];
    overProvisioningRatio: number;
  },
  capacityTotal: number,
  capacityUsed: number,
): StorageCandidate {
  return {
    uuid: a.uuid,
    type: a.type,
    state: a.state,
    status: a.status,
    capacityTotal,
    capacityUsed,
    overProvisioningRatio: a.overProvisioningRatio,
    hasImageCached: false,
  };
}
