/**
 * Filters: each decides alone whether one host can take the VM. `passes` is the hot path (called
 * for every candidate, allocates nothing); `reason` says why in words and is called only for a
 * host that failed, when someone asks. They run in FILTER_NAMES order and a host stops at the
 * first that rejects it, so the cheap and scope-defining checks come first and storage last.
 */

import { freeCpu, freeMemory, freeStorage, storageNeed } from './capacity.js';
import type { PlacementContext } from './context.js';
import { formatBytes, formatBytesPair, plural } from './format.js';
import { FILTER_NAMES, type FilterName, type HostCandidate, type StorageCandidate } from './types.js';

export interface Filter {
  readonly name: FilterName;
  passes(host: HostCandidate, ctx: PlacementContext): boolean;
  reason(host: HostCandidate, ctx: PlacementContext): string;
}

function reaches(host: HostCandidate, storageUuid: string): boolean {
  const list = host.primaryStorages;
  for (let i = 0; i < list.length; i++) if (list[i]!.uuid === storageUuid) return true;
  return false;
}

function usableStorage(ps: StorageCandidate, ctx: PlacementContext): boolean {
  if (ps.state !== 'Enabled' || ps.status !== 'Connected') return false;
  if (ctx.req.requiresSharedStorage && ps.type === 'local') return false;
  const hint = ctx.req.hints?.primaryStorageUuid;
  return hint === undefined || ps.uuid === hint;
}

/**
 * The storage for the root and data volumes, or undefined when none fits: usable (enabled,
 * connected, shared if required, the hinted one if hinted) with room for the disks plus the image
 * where it is not cached. Prefers a storage with the image cached, then the most room left
 * (spread) or the least (pack); ties go to the first listed.
 */
export function pickStorage(host: HostCandidate, ctx: PlacementContext): StorageCandidate | undefined {
  const list = host.primaryStorages;
  const imageSize = ctx.req.image.size;
  let best: StorageCandidate | undefined;
  let bestLeft = 0;
  for (let i = 0; i < list.length; i++) {
    const ps = list[i]!;
    if (!usableStorage(ps, ctx)) continue;
    const left = freeStorage(ps) - storageNeed(ps, ctx.disks, imageSize);
    if (left < 0) continue;
    const better =
      best === undefined ||
      (ps.hasImageCached && !best.hasImageCached) ||
      (ps.hasImageCached === best.hasImageCached && ctx.loadSign * (left - bestLeft) > 0);
    if (better) {
      best = ps;
      bestLeft = left;
    }
  }
  return best;
}

function storageReason(host: HostCandidate, ctx: PlacementContext): string {
  const all = host.primaryStorages;
  if (all.length === 0) return 'reaches no primary storage';
  const hint = ctx.req.hints?.primaryStorageUuid;
  const hinted = hint === undefined ? all : all.filter((ps) => ps.uuid === hint);
  if (hinted.length === 0) return `does not reach primary storage ${hint}`;
  const live = hinted.filter((ps) => ps.state === 'Enabled' && ps.status === 'Connected');
  if (live.length === 0) {
    const states = hinted.map((ps) => `${ps.uuid} is ${ps.state === 'Enabled' ? ps.status : ps.state}`);
    return `no enabled and connected primary storage (${states.join(', ')})`;
  }
  const usable = live.filter((ps) => usableStorage(ps, ctx));
  if (usable.length === 0) return 'reaches only local primary storage, and a migration needs shared storage';
  const short = usable.map((ps) => {
    const [free, need] = formatBytesPair(
      Math.max(0, freeStorage(ps)),
      storageNeed(ps, ctx.disks, ctx.req.image.size),
    );
    return `${ps.uuid} has ${free} free, needs ${need}`;
  });
  return `no primary storage with room (${short.join('; ')})`;
}

const filters: Record<FilterName, Filter> = {
  hints: {
    name: 'hints',
    passes(host, ctx) {
      const h = ctx.req.hints;
      if (h === undefined) return true;
      if (h.zoneUuid !== undefined && host.zoneUuid !== h.zoneUuid) return false;
      if (h.clusterUuid !== undefined && host.clusterUuid !== h.clusterUuid) return false;
      if (h.hostUuid !== undefined && host.uuid !== h.hostUuid) return false;
      return h.primaryStorageUuid === undefined || reaches(host, h.primaryStorageUuid);
    },
    reason(host, ctx) {
      const h = ctx.req.hints ?? {};
      if (h.zoneUuid !== undefined && host.zoneUuid !== h.zoneUuid)
        return `in zone ${host.zoneUuid}, not ${h.zoneUuid}`;
      if (h.clusterUuid !== undefined && host.clusterUuid !== h.clusterUuid) {
        return `in cluster ${host.clusterUuid}, not ${h.clusterUuid}`;
      }
      if (h.hostUuid !== undefined && host.uuid !== h.hostUuid) return `not the requested host ${h.hostUuid}`;
      return `does not reach primary storage ${h.primaryStorageUuid}`;
    },
  },
  excluded: {
    name: 'excluded',
    passes: (host, ctx) => !ctx.excluded.has(host.uuid),
    reason: () => 'already tried (excluded by the request)',
  },
  'host-state': {
    name: 'host-state',
    passes: (host) => host.state === 'Enabled' && host.status === 'Connected',
    reason: (host) => `host is ${host.state === 'Enabled' ? host.status : host.state}`,
  },
  'cluster-state': {
    name: 'cluster-state',
    passes: (host) => host.cluster.state === 'Enabled' && host.cluster.zoneState === 'Enabled',
    reason: (host) => (host.cluster.state === 'Enabled' ? 'zone is Disabled' : 'cluster is Disabled'),
  },
  image: {
    name: 'image',
    passes: (host, ctx) =>
      !ctx.isoWithoutRoot && (ctx.hypervisorType === undefined || host.hypervisorType === ctx.hypervisorType),
    reason(host, ctx) {
      if (ctx.isoWithoutRoot)
        return `image ${ctx.req.image.uuid} is an ISO and the request has no root disk size`;
      return `hypervisor ${host.hypervisorType} cannot run image ${ctx.req.image.uuid} (${ctx.hypervisorType})`;
    },
  },
  'l2-network': {
    name: 'l2-network',
    passes(host, ctx) {
      const want = ctx.l2;
      for (let i = 0; i < want.length; i++) if (!host.l2NetworkUuids.includes(want[i]!)) return false;
      return true;
    },
    reason: (host, ctx) =>
      `cluster ${host.clusterUuid} lacks L2 network(s) ${ctx.l2.filter((n) => !host.l2NetworkUuids.includes(n)).join(', ')}`,
  },
  affinity: {
    name: 'affinity',
    passes(host, ctx) {
      for (const g of ctx.hardAffinity) if (!g.members.has(host.uuid)) return false;
      for (const g of ctx.hardAntiAffinity) if (g.members.has(host.uuid)) return false;
      return true;
    },
    reason(host, ctx) {
      const apart = ctx.hardAffinity.find((g) => !g.members.has(host.uuid));
      if (apart) return `hard affinity group ${apart.group.name} runs on other hosts`;
      const together = ctx.hardAntiAffinity.find((g) => g.members.has(host.uuid));
      return `hard anti-affinity group ${together?.group.name} already runs here`;
    },
  },
  cpu: {
    name: 'cpu',
    passes: (host, ctx) => freeCpu(host, ctx.cfg) >= ctx.req.cpu,
    reason: (host, ctx) =>
      `${plural(freeCpu(host, ctx.cfg), 'free vCPU')} (${host.cpuTotal} × ${ctx.cfg.cpuOvercommit} − ${host.cpuUsed} used), needs ${ctx.req.cpu}`,
  },
  memory: {
    name: 'memory',
    passes: (host, ctx) => freeMemory(host, ctx.cfg) >= ctx.req.memory,
    reason(host, ctx) {
      const [free, need] = formatBytesPair(Math.max(0, freeMemory(host, ctx.cfg)), ctx.req.memory);
      return `${free} free memory (after ${formatBytes(ctx.cfg.reservedMemoryPerHost)} reserved), needs ${need}`;
    },
  },
  'max-vms': {
    name: 'max-vms',
    passes: (host, ctx) => ctx.cfg.maxVmsPerHost === 0 || host.vmCount < ctx.cfg.maxVmsPerHost,
    reason: (host, ctx) => `runs ${host.vmCount} VMs, the limit is ${ctx.cfg.maxVmsPerHost}`,
  },
  storage: {
    name: 'storage',
    passes: (host, ctx) => pickStorage(host, ctx) !== undefined,
    reason: storageReason,
  },
};

/** All filters, in the order they run. */
export const FILTERS: readonly Filter[] = FILTER_NAMES.map((n) => filters[n]);

export function filterByName(name: FilterName): Filter {
  return filters[name];
}

/** The first filter that rejects the host, or undefined when it passes them all. */
export function firstFailing(host: HostCandidate, ctx: PlacementContext): Filter | undefined {
  for (let i = 0; i < FILTERS.length; i++) {
    const f = FILTERS[i]!;
    if (!f.passes(host, ctx)) return f;
  }
  return undefined;
}
