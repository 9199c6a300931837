/**
 * The words for an empty result: which constraint was tightest (the filter that stopped the most
 * hosts within the hinted scope), where, and how every in-scope host was stopped, e.g.
 * "no host with 64 GiB free memory in zone z1 (4 hosts: 3 lacked memory, 1 disabled or disconnected)".
 * Runs only when nothing fits, so it may allocate freely.
 */

import type { PlacementContext } from './context.js';
import { formatBytes, plural } from './format.js';
import { FILTER_NAMES, type FilterName, type HostCandidate } from './types.js';

const LABELS: Record<FilterName, string> = {
  hints: 'outside the hinted scope',
  excluded: 'already tried',
  'host-state': 'disabled or disconnected',
  'cluster-state': 'in a disabled cluster or zone',
  image: 'incompatible with the image',
  'l2-network': 'lacked L2 networks',
  affinity: 'broke hard affinity rules',
  cpu: 'lacked CPU',
  memory: 'lacked memory',
  'max-vms': 'at the VM limit',
  storage: 'lacked primary storage',
};

function headline(name: FilterName, ctx: PlacementContext): string {
  const { req, cfg } = ctx;
  switch (name) {
    case 'hints':
      return 'no host';
    case 'excluded':
      return `no host besides the ${ctx.excluded.size} already tried`;
    case 'host-state':
      return 'no enabled and connected host';
    case 'cluster-state':
      return 'no host in an enabled cluster and zone';
    case 'image':
      return ctx.isoWithoutRoot
        ? `image ${req.image.uuid} is an ISO and the request has no root disk size`
        : `no ${ctx.hypervisorType} host for image ${req.image.uuid}`;
    case 'l2-network':
      return `no host whose cluster has L2 network${ctx.l2.length === 1 ? '' : 's'} ${ctx.l2.join(', ')} attached`;
    case 'affinity': {
      const groups = [
        ...ctx.hardAffinity.map((g) => `hard affinity group ${g.group.name}`),
        ...ctx.hardAntiAffinity.map((g) => `hard anti-affinity group ${g.group.name}`),
      ];
      return `no host satisfies ${groups.join(' and ')}`;
    }
    case 'cpu':
      return `no host with ${plural(req.cpu, 'free vCPU')} (CPU over-commit ${cfg.cpuOvercommit}×)`;
    case 'memory':
      return `no host with ${formatBytes(req.memory)} free memory`;
    case 'max-vms':
      return `no host below the limit of ${plural(cfg.maxVmsPerHost, 'VM')}`;
    case 'storage': {
      const image =
        req.image.size > 0 ? ` (plus ${formatBytes(req.image.size)} where the image is not cached)` : '';
      const hint = req.hints?.primaryStorageUuid;
      if (hint !== undefined)
        return `primary storage ${hint} cannot take ${formatBytes(ctx.disks)} of disks${image}`;
      const kind = req.requiresSharedStorage ? 'shared primary storage' : 'primary storage';
      return `no host reaches an enabled ${kind} with ${formatBytes(ctx.disks)} free for the disks${image}`;
    }
  }
}

/** " in zone z1, in cluster c1, …": the hints as words, with names where a candidate carries them. */
function scope(candidates: readonly HostCandidate[], ctx: PlacementContext, storageSaid: boolean): string {
  const h = ctx.req.hints;
  if (h === undefined) return '';
  const parts: string[] = [];
  if (h.zoneUuid !== undefined) {
    const name = candidates.find((c) => c.zoneUuid === h.zoneUuid && c.cluster.zoneName)?.cluster.zoneName;
    parts.push(`in zone ${name ?? h.zoneUuid}`);
  }
  if (h.clusterUuid !== undefined) {
    const name = candidates.find((c) => c.clusterUuid === h.clusterUuid && c.cluster.name)?.cluster.name;
    parts.push(`in cluster ${name ?? h.clusterUuid}`);
  }
  if (h.hostUuid !== undefined) {
    parts.push(`on host ${candidates.find((c) => c.uuid === h.hostUuid)?.name ?? h.hostUuid}`);
  }
  if (h.primaryStorageUuid !== undefined && !storageSaid)
    parts.push(`reaching primary storage ${h.primaryStorageUuid}`);
  return parts.length === 0 ? '' : ` ${parts.join(', ')}`;
}

export function explain(
  candidates: readonly HostCandidate[],
  rejected: Readonly<Record<FilterName, number>>,
  ctx: PlacementContext,
): string {
  const inScope = candidates.length - rejected.hints;
  if (candidates.length === 0) return `no candidate hosts${scope(candidates, ctx, false)}`;
  if (inScope === 0)
    return `no host${scope(candidates, ctx, false)} among ${plural(candidates.length, 'candidate host')}`;
  // Later filters win ties: a host that got that far passed every earlier check.
  let tightest: FilterName = 'excluded';
  for (const name of FILTER_NAMES) {
    if (name !== 'hints' && rejected[name] > 0 && rejected[name] >= rejected[tightest]) tightest = name;
  }
  const parts = FILTER_NAMES.filter((n) => n !== 'hints' && rejected[n] > 0)
    .sort((a, b) => rejected[b] - rejected[a] || FILTER_NAMES.indexOf(a) - FILTER_NAMES.indexOf(b))
    .map((n) => `${rejected[n]} ${LABELS[n]}`);
  const where = scope(candidates, ctx, tightest === 'storage');
  return `${headline(tightest, ctx)}${where} (${plural(inScope, 'host')}: ${parts.join(', ')})`;
}
