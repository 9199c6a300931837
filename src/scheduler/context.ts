/**
 * Per-request precomputation: everything the filters and weighers would otherwise recompute for
 * every host (sets for exclusion and affinity, the disk total, the L2 verdict per cluster) is
 * built once here, so the per-host work allocates nothing.
 */
import { type FieldProblem, invalid } from '../kernel/errors.js';
import { diskBytes } from './capacity.js';
import type { AffinityGroup, PlacementRequest, SchedulerConfig } from './types.js';

export interface HardGroup {
  group: AffinityGroup;
  members: ReadonlySet<string>;
}

export interface PlacementContext {
  readonly req: PlacementRequest;
  readonly cfg: SchedulerConfig;
  /** Root + data volume bytes. */
  readonly disks: number;
  readonly excluded: ReadonlySet<string>;
  /** undefined: the image runs on any hypervisor. */
  readonly hypervisorType: string | undefined;
  readonly isoWithoutRoot: boolean;
  readonly l2: readonly string[];
  /** Hard affinity groups that already have members (an empty group allows any host). */
  readonly hardAffinity: readonly HardGroup[];
  readonly hardAntiAffinity: readonly HardGroup[];
  /** Per host: members of soft affinity / anti-affinity groups running there. */
  readonly softAffinity: ReadonlyMap<string, number>;
  readonly softAntiAffinity: ReadonlyMap<string, number>;
  /** +1 for spread, −1 for pack: the sign of every load weigher. */
  readonly loadSign: 1 | -1;
}

const EMPTY_SET: ReadonlySet<string> = new Set();
const EMPTY_MAP: ReadonlyMap<string, number> = new Map();

/** Every malformed field at once (Invalid, INVALID_PLACEMENT_REQUEST): a caller bug, not a placement failure. */
export function validateRequest(req: PlacementRequest): void {
  const problems: FieldProblem[] = [];
  const int = (field: string, v: unknown, min: number) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      problems.push({ field, problem: `must be an integer ≥ ${min}` });
    }
  };
  int('cpu', req.cpu, 1);
  int('memory', req.memory, 1);
  int('rootDiskSize', req.rootDiskSize, 0);
  for (const [i, s] of (req.dataDiskSizes ?? []).entries()) int(`dataDiskSizes[${i}]`, s, 0);
  int('image.size', req.image?.size, 0);
  if (!['qcow2', 'raw', 'iso'].includes(req.image?.format)) {
    problems.push({ field: 'image.format', problem: "must be 'qcow2', 'raw' or 'iso'" });
  }
  for (const [i, g] of (req.affinityGroups ?? []).entries()) {
    if (g.policy !== 'affinity' && g.policy !== 'anti-affinity') {
      problems.push({
        field: `affinityGroups[${i}].policy`,
        problem: "must be 'affinity' or 'anti-affinity'",
      });
    }
    if (g.enforcement !== 'hard' && g.enforcement !== 'soft') {
      problems.push({ field: `affinityGroups[${i}].enforcement`, problem: "must be 'hard' or 'soft'" });
    }
  }
  if (problems.length > 0) throw invalid(problems, 'INVALID_PLACEMENT_REQUEST');
}

function countMembers(groups: readonly AffinityGroup[]): ReadonlyMap<string, number> {
  if (groups.length === 0) return EMPTY_MAP;
  const counts = new Map<string, number>();
  for (const g of groups) for (const h of g.memberHostUuids) counts.set(h, (counts.get(h) ?? 0) + 1);
  return counts;
}

export function createContext(req: PlacementRequest, cfg: SchedulerConfig): PlacementContext {
  validateRequest(req);
  const groups = req.affinityGroups ?? [];
  const pick = (policy: AffinityGroup['policy'], enforcement: AffinityGroup['enforcement']) =>
    groups.filter((g) => g.policy === policy && g.enforcement === enforcement);
  const hard = (gs: AffinityGroup[]): HardGroup[] =>
    gs
      .filter((g) => g.memberHostUuids.length > 0)
      .map((group) => ({ group, members: new Set(group.memberHostUuids) }));
  const hv = req.image.hypervisorType;
  return {
    req,
    cfg,
    disks: diskBytes(req),
    excluded: req.excludeHosts?.length ? new Set(req.excludeHosts) : EMPTY_SET,
    hypervisorType: hv === undefined || hv === '' || hv === 'any' ? undefined : hv,
    isoWithoutRoot: req.image.format === 'iso' && req.rootDiskSize <= 0,
    l2: req.l2NetworkUuids ?? [],
    hardAffinity: hard(pick('affinity', 'hard')),
    hardAntiAffinity: hard(pick('anti-affinity', 'hard')),
    softAffinity: countMembers(pick('affinity', 'soft')),
    softAntiAffinity: countMembers(pick('anti-affinity', 'soft')),
    loadSign: cfg.strategy === 'pack' ? -1 : 1,
  };
}
