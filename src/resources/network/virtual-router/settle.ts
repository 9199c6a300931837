/**
 * The router service's periodic pass (every settings.reconcileIntervalSeconds; tests call it
 * directly): brings router rows in step with what already happened, without waiting for the next
 * VM on their L3 —
 * - a router Creating whose appliance job has finished (its waiters died with their node in the
 *   moment between the job's end and their next look) is settled as a waiter would have
 *   (ensure.ts `finish`: Running with its addresses and its configuration sent, or Error);
 * - a router Running whose appliance is stopped is marked Stopped; one Stopped whose appliance
 *   runs again (an admin started it) is marked Running and sent its configuration (start.ts).
 * Each node settles the routers it owns (rendezvous, cluster/ownership.ts), and every change is
 * conditional, so VMs settling at the same time are harmless. The pass never starts an appliance: a stopped router is started by the next VM that
 * needs it.
 */
import { ownedBy } from '../../../cluster/ownership.js';
import type { Db } from '../../../db/pool.js';
import type { FlowDeps } from '../../service.js';
import { finish } from './ensure.js';
import { markStopped, settleStarted } from './start.js';

/** One pass; returns how many routers it changed (or tried to: a failed sync counts). */
export async function settleRouters(db: Db, deps: FlowDeps, nodeId: string): Promise<number> {
  let changed = 0;
  const created = await db
    .selectFrom('virtualRouters as r')
    .innerJoin('jobs as j', 'j.uuid', 'r.jobUuid')
    .select(['r.uuid', 'r.jobUuid', 'j.state as jobState'])
    .where('r.state', '=', 'Creating')
    .where(ownedBy('r', nodeId))
    .where('j.state', 'in', ['Succeeded', 'Failed', 'Cancelled'])
    .execute();
  const started = await db
    .selectFrom('virtualRouters as r')
    .innerJoin('vms as v', 'v.uuid', 'r.vmUuid')
    .select('r.uuid')
    .where('r.state', '=', 'Stopped')
    .where(ownedBy('r', nodeId))
    .where('v.state', '=', 'Running')
    .execute();
  const work = [
    ...created.map((r) => () => finish(db, deps, r.uuid, r.jobUuid!, r.jobState === 'Succeeded')),
    ...started.map((r) => () => settleStarted(db, deps, r.uuid)),
  ];
  const results = await Promise.allSettled(work.map((w) => w()));
  for (const r of results) {
    changed++;
    if (r.status === 'rejected') deps.log.warn({ err: r.reason }, 'settling a virtual router failed');
  }
  return changed + (await markStopped(db, undefined, nodeId));
}
