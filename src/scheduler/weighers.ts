/**
 * Weighers: each turns a surviving host into a number where higher is better; `weigh` normalises
 * every metric min–max over the survivors to [0, 1] and adds multiplier × normalised to the score
 * (Nova's scheme). A metric equal on every survivor contributes nothing. 'pack' flips the sign of
 * the load weighers (memory, CPU, VM count), so the fullest host that still fits wins.
 */
import { freeCpu, freeMemory } from './capacity.js';
import type { PlacementContext } from './context.js';
import type { HostCandidate, RankedHost, StorageCandidate, WeigherMultipliers } from './types.js';

export type WeigherName = keyof WeigherMultipliers;

export interface Weigher {
  readonly name: WeigherName;
  /** Whether the metric can differ between hosts at all for this request (else skipped). */
  applies(ctx: PlacementContext): boolean;
  metric(host: HostCandidate, storage: StorageCandidate, ctx: PlacementContext): number;
}

const always = () => true;

export const WEIGHERS: readonly Weigher[] = [
  { name: 'memory', applies: always, metric: (host, _s, ctx) => ctx.loadSign * freeMemory(host, ctx.cfg) },
  { name: 'cpu', applies: always, metric: (host, _s, ctx) => ctx.loadSign * freeCpu(host, ctx.cfg) },
  { name: 'vmCount', applies: always, metric: (host, _s, ctx) => -ctx.loadSign * host.vmCount },
  {
    name: 'softAffinity',
    applies: (ctx) => ctx.softAffinity.size > 0,
    metric: (host, _s, ctx) => ctx.softAffinity.get(host.uuid) ?? 0,
  },
  {
    name: 'softAntiAffinity',
    applies: (ctx) => ctx.softAntiAffinity.size > 0,
    metric: (host, _s, ctx) => -(ctx.softAntiAffinity.get(host.uuid) ?? 0),
  },
  { name: 'imageCache', applies: always, metric: (_h, storage) => (storage.hasImageCached ? 1 : 0) },
];

/** Adds every weigher's contribution to each entry's score (entries start at score 0). */
export function weigh(entries: RankedHost[], ctx: PlacementContext): void {
  const n = entries.length;
  if (n < 2) return;
  const values = new Float64Array(n);
  for (const w of WEIGHERS) {
    const multiplier = ctx.cfg.weights[w.name];
    if (multiplier === 0 || !w.applies(ctx)) continue;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      const v = w.metric(e.host, e.storage, ctx);
      values[i] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (max === min) continue;
    const scale = multiplier / (max - min);
    for (let i = 0; i < n; i++) entries[i]!.score += (values[i]! - min) * scale;
  }
}
