/**
 * The scheduler's candidate hosts, kept in memory so a placement never reads every host row:
 * a snapshot of hosts (with cluster and zone state), the primary storages each reaches (local
 * storage: the host's own share), the L2 networks of each host's cluster and where images are cached, reloaded in the background at
 * most every `maxAgeMs` and adjusted locally after this node's own reservations. It is a guide
 * only: the conditional reservation UPDATE is the truth, so a stale snapshot costs a retry on
 * the next host, never an over-commit.
 *
 * `hasImageCached` depends on the image, so each image gets a view: plain copies of the hosts and
 * storages with that flag set (plain, same-shaped objects keep the scheduler's property accesses
 * monomorphic — prototype tricks made every host its own hidden class and the scheduler several
 * times slower). A local update is applied to the snapshot and to each view (a few per node).
 */
import type { Db } from '../../../db/pool.js';
import type { HostAddress } from '../../../drivers/port.js';
import type { HostCandidate, StorageCandidate } from '../../../scheduler/index.js';

export interface Snapshot {
  loadedAt: number;
  hosts: HostCandidate[];
  byUuid: Map<string, HostCandidate>;
  addresses: Map<string, HostAddress>;
  /** storage objects by `${ps}/${host}` (local) or `${ps}/` (shared) */
  storages: Map<string, StorageCandidate>;
  /**
   * cached images by `${ps}/${host or ''}/${image}`; the entry itself when it is Ready and
   * already shared (see reusableCache)
   */
  cached: Map<string, CacheEntry | undefined>;
  views: Map<string, View>;
}

/** One image's candidates, with its objects by host and by storage key (for local updates). */
interface View {
  hosts: HostCandidate[];
  byHost: Map<string, Mutable<HostCandidate>>;
  storages: Map<string, Mutable<StorageCandidate>>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An image cache entry a create may clone from without asking the cache again. */
export interface CacheEntry {
  cacheUuid: string;
  path: string;
}

const storageKey = (ps: string, host: string | null) => `${ps}/${host ?? ''}`;

/** a reload may take at most one part in RELOAD_SHARE of the time (see reload) */
const RELOAD_SHARE = 10;
/** however slow loads are, the snapshot is reloaded at least this often */
const MAX_AGE_MS = 10_000;

export class CandidateSnapshot {
  private current: Snapshot | undefined;
  /** how old the snapshot may grow before a reload: maxAgeMs, or more when loads are slow */
  private ageMs: number;
  private loading: Promise<Snapshot> | undefined;

  constructor(
    private readonly db: Db,
    private readonly maxAgeMs = 500,
  ) {
    this.ageMs = maxAgeMs;
  }

  /** The candidates for a VM of `imageUuid`; reloads in the background when stale. */
  async view(imageUuid: string): Promise<HostCandidate[]> {
    const snap = await this.snapshot();
    return viewOf(snap, imageUuid);
  }

  /** Waits for a snapshot loaded after this call (or one already loading), then the view. */
  async freshView(imageUuid: string): Promise<HostCandidate[]> {
    return viewOf(await this.reload(), imageUuid);
  }

  /** Loads the snapshot and builds the views of these images, so the first creates find them made. */
  async warm(imageUuids: string[]): Promise<void> {
    const snap = await this.reload();
    for (const image of imageUuids) viewOf(snap, image);
  }

  /** How to address a host in commands, if the snapshot knows it. */
  address(hostUuid: string): HostAddress | undefined {
    return this.current?.addresses.get(hostUuid);
  }

  /** After a reservation (+1) or release (−1) this node made: keep the guide close to the truth. */
  onHostCapacity(hostUuid: string, cpu: number, memory: number, sign: 1 | -1): void {
    const snap = this.current;
    if (!snap) return;
    const copies = [
      snap.byUuid.get(hostUuid),
      ...[...snap.views.values()].map((v) => v.byHost.get(hostUuid)),
    ];
    for (const host of copies as Array<Mutable<HostCandidate> | undefined>) {
      if (!host) continue;
      host.cpuUsed += sign * cpu;
      host.memoryUsed += sign * memory;
      host.vmCount += sign;
    }
  }

  onStorageUsed(primaryStorageUuid: string, hostUuid: string | null, bytes: number): void {
    const snap = this.current;
    if (!snap) return;
    const key = snap.storages.has(storageKey(primaryStorageUuid, hostUuid))
      ? storageKey(primaryStorageUuid, hostUuid)
      : storageKey(primaryStorageUuid, null);
    const copies = [snap.storages.get(key), ...[...snap.views.values()].map((v) => v.storages.get(key))];
    for (const ps of copies as Array<Mutable<StorageCandidate> | undefined>) if (ps) ps.capacityUsed += bytes;
  }

  /** The image is cached there; `shared`: the entry was handed over, so later creates may reuse it. */
  onImageCached(
    primaryStorageUuid: string,
    hostUuid: string | null,
    imageUuid: string,
    shared?: CacheEntry,
  ): void {
    const snap = this.current;
    if (!snap) return;
    const key = `${storageKey(primaryStorageUuid, hostUuid)}/${imageUuid}`;
    const known = snap.cached.has(key);
    if (!known || (shared && !snap.cached.get(key))) snap.cached.set(key, shared);
    // the view keeps its objects: the flag flips in place (a rebuild per newly cached host, on
    // a thousand hosts, cost more than all the placements of a burst)
    const view = snap.views.get(imageUuid)?.storages.get(storageKey(primaryStorageUuid, hostUuid));
    if (view) view.hasImageCached = true;
  }

  /**
   * A Ready cache entry that was already handed to a caller other than its creator (`shared`),
   * so no rollback will remove it: what ensureImageCache would return without writing anything.
   * Read from the snapshot, it saves the cache two round trips per create; an entry removed
   * since (clean-image-cache takes only entries no volume uses) is the same race
   * ensureImageCache's own answer has.
   */
  reusableCache(
    primaryStorageUuid: string,
    hostUuid: string | null,
    imageUuid: string,
  ): CacheEntry | undefined {
    return this.current?.cached.get(`${storageKey(primaryStorageUuid, hostUuid)}/${imageUuid}`);
  }

  private async snapshot(): Promise<Snapshot> {
    const snap = this.current;
    if (!snap) return this.reload();
    if (Date.now() - snap.loadedAt > this.ageMs && !this.loading) void this.reload().catch(() => {});
    return snap;
  }

  private reload(): Promise<Snapshot> {
    if (!this.loading) {
      const t0 = performance.now();
      this.loading = load(this.db)
        .then((snap) => {
          this.current = snap;
          // a reload reads every host: with ten thousand of them it takes long enough that
          // reloading every maxAgeMs would make it the node's main work. The age allowed grows
          // with what a load costs, so reloads take at most ~1/RELOAD_SHARE of the time whatever
          // the inventory (a staler guide costs a retry on the next host, never an over-commit).
          const took = performance.now() - t0;
          this.ageMs = Math.min(MAX_AGE_MS, Math.max(this.maxAgeMs, RELOAD_SHARE * took));
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
  const built = snap.views.get(imageUuid);
  if (built) return built.hosts;
  const storages = new Map<string, Mutable<StorageCandidate>>();
  const byHost = new Map<string, Mutable<HostCandidate>>();
  const storageCopy = (ps: StorageCandidate, hostUuid: string): StorageCandidate => {
    const key = storageKey(ps.uuid, ps.type === 'local' ? hostUuid : null);
    let copy = storages.get(key);
    if (!copy) {
      copy = { ...ps, hasImageCached: snap.cached.has(`${key}/${imageUuid}`) };
      storages.set(key, copy);
    }
    return copy;
  };
  const hosts = snap.hosts.map((h) => {
    const copy: Mutable<HostCandidate> = {
      ...h,
      primaryStorages: h.primaryStorages.map((ps) => storageCopy(ps, h.uuid)),
    };
    byHost.set(h.uuid, copy);
    return copy;
  });
  snap.views.set(imageUuid, { hosts, byHost, storages });
  return hosts;
}

async function load(db: Db): Promise<Snapshot> {
  const startedAt = Date.now();
  const [hosts, attached, shares, cached, l2Attached] = await Promise.all([
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
      .select(['uuid', 'primaryStorageUuid', 'hostUuid', 'imageUuid', 'path', 'shared'])
      .where('state', '=', 'Ready')
      .execute(),
    db.selectFrom('l2NetworkClusters').select(['clusterUuid', 'l2NetworkUuid']).execute(),
  ]);
  // one array per cluster, shared by its hosts (the scheduler only reads it)
  const l2ByCluster = new Map<string, string[]>();
  for (const a of l2Attached) {
    const list = l2ByCluster.get(a.clusterUuid);
    if (list) list.push(a.l2NetworkUuid);
    else l2ByCluster.set(a.clusterUuid, [a.l2NetworkUuid]);
  }
  const noL2: string[] = [];
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
      l2NetworkUuids: l2ByCluster.get(h.clusterUuid) ?? noL2,
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
    cached: new Map(
      cached.map((c) => [
        `${storageKey(c.primaryStorageUuid, c.hostUuid)}/${c.imageUuid}`,
        c.shared && c.path ? { cacheUuid: c.uuid, path: c.path } : undefined,
      ]),
    ),
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
