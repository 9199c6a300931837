/**
 * The pipeline: filter every candidate (first failing filter wins, counted), pick each survivor's
 * storage, weigh, sort best first, then draw the first host at random among the top N so that
 * concurrent requests over the same candidates do not all race for one host. O(n log n) in the
 * candidates, one small object per survivor, nothing copied.
 */
import { DEFAULT_CONFIG } from './config.js';
import { createContext } from './context.js';
import { explain } from './explain.js';
import { FILTERS, type Filter, filterByName, pickStorage } from './filters.js';
import {
  FILTER_NAMES,
  type FilterName,
  type HostCandidate,
  type PlacementRequest,
  type PlacementResult,
  type RankedHost,
  type Rejection,
  type ScheduleOptions,
  type SchedulerConfig,
} from './types.js';
import { weigh } from './weighers.js';

// Storage runs last and also chooses the storage, so the pipeline calls pickStorage itself.
const BEFORE_STORAGE: readonly Filter[] = FILTERS.filter((f) => f.name !== 'storage');
const STORAGE = filterByName('storage');

export function emptyCounts(): Record<FilterName, number> {
  const counts = {} as Record<FilterName, number>;
  for (const name of FILTER_NAMES) counts[name] = 0;
  return counts;
}

function byScore(a: RankedHost, b: RankedHost): number {
  if (a.score !== b.score) return b.score - a.score;
  return a.hostUuid < b.hostUuid ? -1 : a.hostUuid > b.hostUuid ? 1 : 0;
}

/** Moves one of the first `topN` entries, drawn uniformly, to the front; the rest keep their order. */
export function drawFirst<T>(sorted: T[], topN: number, random: () => number): void {
  const k = Math.min(topN, sorted.length);
  if (k < 2) return;
  const i = Math.min(k - 1, Math.floor(random() * k));
  const chosen = sorted[i]!;
  for (let j = i; j > 0; j--) sorted[j] = sorted[j - 1]!;
  sorted[0] = chosen;
}

/**
 * Ranks the candidates for `request`. Throws Invalid only for a malformed request; an impossible
 * one returns no hosts and an explanation naming the tightest constraint.
 */
export function schedule(
  candidates: readonly HostCandidate[],
  request: PlacementRequest,
  config: SchedulerConfig = DEFAULT_CONFIG,
  options: ScheduleOptions = {},
): PlacementResult {
  const ctx = createContext(request, config);
  const rejected = emptyCounts();
  const rejections: Rejection[] | undefined = options.trace ? [] : undefined;
  const hosts: RankedHost[] = [];
  for (let i = 0; i < candidates.length; i++) {
    const host = candidates[i]!;
    let failed: FilterName | undefined;
    for (let j = 0; j < BEFORE_STORAGE.length; j++) {
      const f = BEFORE_STORAGE[j]!;
      if (!f.passes(host, ctx)) {
        failed = f.name;
        rejections?.push({ hostUuid: host.uuid, filter: f.name, reason: f.reason(host, ctx) });
        break;
      }
    }
    if (failed === undefined) {
      const storage = pickStorage(host, ctx);
      if (storage !== undefined) {
        hosts.push({ hostUuid: host.uuid, primaryStorageUuid: storage.uuid, score: 0, host, storage });
        continue;
      }
      failed = 'storage';
      rejections?.push({ hostUuid: host.uuid, filter: failed, reason: STORAGE.reason(host, ctx) });
    }
    rejected[failed]++;
  }
  const result: PlacementResult = { hosts, rejected };
  if (rejections) result.rejections = rejections;
  if (hosts.length === 0) {
    result.explanation = explain(candidates, rejected, ctx);
    return result;
  }
  weigh(hosts, ctx);
  hosts.sort(byScore);
  drawFirst(hosts, config.topN, options.random ?? Math.random);
  return result;
}
