/**
 * Every kind of row a node can leave in a transitional state that no job's own rollback or
 * resume settles, with the sweep recovery runs over it (engine `addReclaimer`; the list is
 * docs/engine.md "Transitional rows"). Rows owned by a job — VMs, volumes, hosts, images in
 * -ing states, IP addresses, reservations on hosts and storage — are settled by that job, which
 * recovery claims and rolls back or resumes; the rows here are the ones other jobs wait on:
 * - image-cache entries Downloading or Deleting (storage/image/cache.ts);
 * - virtual-router rows Creating before their appliance job exists, and start claims not yet
 *   turned into a start job (network/virtual-router/ensure.ts, start.ts).
 */
import type { Db } from '../db/pool.js';
import type { Reclaimer } from '../engine/engine.js';
import { reclaimRouterClaims } from './network/virtual-router/ensure.js';
import type { FlowDeps } from './service.js';
import { reclaimImageCache } from './storage/image/cache.js';

export function transitionalReclaimers(db: Db, deps: FlowDeps): Array<[string, Reclaimer]> {
  return [
    ['image-cache', (deadAfterMs) => reclaimImageCache(db, deps.drivers, deadAfterMs)],
    ['virtual-router-claims', (deadAfterMs) => reclaimRouterClaims(db, deadAfterMs)],
  ];
}
