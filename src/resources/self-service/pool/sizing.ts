/**
 * Adaptive sizing: a pool under a burst of requests grows, and shrinks back when the burst is
 * over. Demand is the number of allocation requests of the last `burstWindowSeconds`: the leases
 * made in it (served or waiting) plus the requests refused because the pool was empty
 * (`pool_misses`). Both are rows each request appends, so counting them takes no row every
 * request must update. The factor in force (`size_factor`) multiplies the cap and the warm target:
 *
 * - requests > threshold → burstFactor (1.5); > 2 × threshold → burstMaxFactor (2); the
 *   threshold defaults to the warm target. A rise takes effect at once (a burst needs VMs now);
 * - when demand is back below a level, the factor steps down ONE level (2 → 1.5 → 1), and only
 *   once a whole window has passed since the last change, so a pool never flaps within a window
 *   and converges back in steps.
 * Every change is a `pool.resized` event with its reason. The stock pass applies it (it runs the
 * pass on the one node that owns the pool): the top-up never lets the pool exceed the effective
 * cap, and the trim takes Ready VMs beyond the effective warm target away when it shrinks.
 * `now` is a parameter so tests move the clock instead of waiting for windows to pass.
 */
import { sql } from 'kysely';
import type { Db } from '../../../db/pool.js';
import { resourceEvent } from '../../common.js';
import type { ServiceContext } from '../../service.js';
import { poolFamily } from './model.js';

export interface PoolSizing {
  uuid: string;
  accountUuid: string;
  warmTarget: number;
  cap: number;
  burstWindowSeconds: number;
  burstThreshold: number | null;
  burstFactor: number;
  burstMaxFactor: number;
  sizeFactor: number;
  sizeChangedAt: Date | null;
}

export const SIZING_COLUMNS = [
  'burstWindowSeconds',
  'burstThreshold',
  'burstFactor',
  'burstMaxFactor',
  'sizeFactor',
  'sizeChangedAt',
] as const;

/** The cap and warm target in force: the configured ones times the factor (warm target ≤ cap). */
export function effectiveSize(p: Pick<PoolSizing, 'cap' | 'warmTarget' | 'sizeFactor'>) {
  const cap = Math.floor(p.cap * p.sizeFactor);
  return { cap, warmTarget: Math.min(Math.floor(p.warmTarget * p.sizeFactor), cap) };
}

export const thresholdOf = (p: Pick<PoolSizing, 'burstThreshold' | 'warmTarget'>) =>
  p.burstThreshold ?? Math.max(p.warmTarget, 1);

/** The factor a demand of `requests` asks for. */
export function wantedFactor(p: PoolSizing, requests: number): number {
  const threshold = thresholdOf(p);
  if (requests > 2 * threshold) return p.burstMaxFactor;
  if (requests > threshold) return p.burstFactor;
  return 1;
}

/** The next factor and why, or undefined when it stays (pure: tested beside the code). */
export function nextFactor(
  p: PoolSizing,
  requests: number,
  now: Date,
): { factor: number; reason: string } | undefined {
  const wanted = wantedFactor(p, requests);
  const threshold = thresholdOf(p);
  const demand = `${requests} requests in the last ${p.burstWindowSeconds} s`;
  if (wanted > p.sizeFactor)
    return {
      factor: wanted,
      reason:
        wanted === p.burstMaxFactor && wanted !== p.burstFactor
          ? `${demand}, more than twice the threshold ${threshold}`
          : `${demand}, more than the threshold ${threshold}`,
    };
  if (wanted >= p.sizeFactor) return undefined;
  const calmSince = p.sizeChangedAt ? now.getTime() - new Date(p.sizeChangedAt).getTime() : Infinity;
  if (calmSince < p.burstWindowSeconds * 1000) return undefined;
  const lower = [1, p.burstFactor, p.burstMaxFactor].filter((f) => f < p.sizeFactor);
  const step = Math.max(wanted, ...lower);
  return { factor: step, reason: `${demand}, demand has fallen (threshold ${threshold})` };
}

/** Requests of the window ending at `now`: leases made in it plus empty-pool refusals. */
export async function recentRequests(db: Db, p: PoolSizing, now: Date): Promise<number> {
  const since = new Date(now.getTime() - p.burstWindowSeconds * 1000);
  const { rows } = await sql<{ n: number }>`
    select (select count(*) from leases where pool_uuid = ${p.uuid} and created_at > ${since} and created_at <= ${now})
      + (select count(*) from pool_misses where pool_uuid = ${p.uuid} and at > ${since} and at <= ${now}) as n`.execute(
    db,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * One sizing decision for a pool: the factor changes (conditionally on the one seen, with its
 * event) or stays. Returns the pool with the factor in force. Misses older than the window are
 * pruned (nothing counts them any more).
 */
export async function adaptPoolSize<P extends PoolSizing>(
  ctx: ServiceContext,
  pool: P,
  now: Date,
): Promise<P> {
  const requests = await recentRequests(ctx.db, pool, now);
  const next = nextFactor(pool, requests, now);
  await ctx.db
    .deleteFrom('poolMisses')
    .where('poolUuid', '=', pool.uuid)
    .where('at', '<=', new Date(now.getTime() - pool.burstWindowSeconds * 1000))
    .execute();
  if (!next) return pool;
  const changed = await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    const row = await tx
      .updateTable('pools')
      .set({ sizeFactor: next.factor, sizeChangedAt: now })
      .where('uuid', '=', pool.uuid)
      .where('sizeFactor', '=', pool.sizeFactor)
      .returning(['uuid', 'accountUuid'])
      .executeTakeFirst();
    if (!row) return false;
    const size = effectiveSize({ ...pool, sizeFactor: next.factor });
    batch.add(
      resourceEvent(poolFamily, row, 'resized', {
        from: pool.sizeFactor,
        to: next.factor,
        reason: next.reason,
        requests,
        windowSeconds: pool.burstWindowSeconds,
        threshold: thresholdOf(pool),
        effectiveCap: size.cap,
        effectiveWarmTarget: size.warmTarget,
      }),
    );
    return true;
  });
  return changed ? { ...pool, sizeFactor: next.factor, sizeChangedAt: now } : pool;
}

/** An allocation refused because the pool had no ready VM: demand the sizing must see. */
export async function recordMiss(db: Db, poolUuid: string): Promise<void> {
  await db.insertInto('poolMisses').values({ poolUuid }).execute();
}
