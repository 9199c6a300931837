/**
 * A router whose appliance VM is stopped (an admin stopped it, or the reconciler found it
 * powered off) is started again by the next VM that needs it (docs/network.md "Virtual routers"),
 * and the router's row follows its appliance:
 *
 * - appliance Stopped or Stopping → the row goes Running → Stopped (conditional on the VM's
 *   state, so a stale look cannot mark a router that is up again);
 * - a Stopped row is claimed by one caller: `job_uuid` goes NULL → a claim token (a fresh uuid,
 *   no job) in a conditional UPDATE, then → the appliance's `vm.start` job once submitted. Every
 *   other caller waits, so however many VMs arrive, the appliance is started once. The claim
 *   names the claiming VM job (`claim_job_uuid`); a claim left without its start job is cleared
 *   and taken again as soon as that job is gone (its caller died before submitting);
 * - appliance Running again (that start, or anyone's) → the row goes Stopped → Running
 *   (conditional: one caller wins) and the winner re-sends the whole configuration;
 * - the start failed → the claim is cleared; a caller that waited for that start fails with
 *   VIRTUAL_ROUTER_FAILED, the next one starts it again.
 * An appliance in any other state (Paused, Unknown, Destroyed…) is not repaired here: a Running
 * row is left as it is (as before), a Stopped row fails the VM.
 */
import { ownedBy } from '../../../cluster/ownership.js';
import type { Db } from '../../../db/pool.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import type { FlowDeps } from '../../service.js';
import { claimOrphaned, type RouterCaller } from './claims.js';
import { syncRouters } from './sync.js';

/** appliance states in which its guest runs (and serves) */
const UP = ['Running', 'Rebooting', 'Migrating'];
/** appliance states on the way down or stopped: the router is Stopped */
const DOWN = ['Stopped', 'Stopping', 'Starting'];
const FINISHED = ['Succeeded', 'Failed', 'Cancelled'];

/** the router row (Running or Stopped) with its appliance and the job it waits for */
export interface RouterLook {
  uuid: string;
  state: string;
  vmUuid: string | null;
  vmState: string | null;
  vmTask: string | null;
  jobUuid: string | null;
  jobState: string | null;
  /** the VM job holding a claim (when no start job is submitted yet) */
  claimJobUuid: string | null;
  updatedAt: Date;
}

/** 'ready': the router serves; 'wait': look again after a pause; 'again': look again at once */
export type StartStep = 'ready' | 'wait' | 'again';

/** Running → Stopped when its appliance is stopped (or on its way down or up). */
export async function markStopped(db: Db, routerUuid?: string, ownerNode?: string): Promise<number> {
  let q = db
    .updateTable('virtualRouters as r')
    .set({ state: 'Stopped', status: 'Disconnected', jobUuid: null, updatedAt: new Date() })
    .where('r.state', '=', 'Running')
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('vms as v')
          .select('v.uuid')
          .whereRef('v.uuid', '=', 'r.vmUuid')
          .where('v.state', 'in', DOWN),
      ),
    );
  if (routerUuid) q = q.where('r.uuid', '=', routerUuid);
  if (ownerNode) q = q.where(ownedBy('r', ownerNode));
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/**
 * Stopped → Running once its appliance runs again; the caller that wins re-sends the router's
 * whole configuration (a restarted appliance may have lost it; the VMs' changes while it was
 * stopped were not sent). Returns whether this caller won.
 */
export async function settleStarted(db: Db, deps: FlowDeps, routerUuid: string): Promise<boolean> {
  const won = await db
    .updateTable('virtualRouters as r')
    .set({ state: 'Running', status: 'Connecting', jobUuid: null, updatedAt: new Date() })
    .where('r.uuid', '=', routerUuid)
    .where('r.state', '=', 'Stopped')
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('vms as v')
          .select('v.uuid')
          .whereRef('v.uuid', '=', 'r.vmUuid')
          .where('v.state', 'in', UP),
      ),
    )
    .returning('r.uuid')
    .executeTakeFirst();
  if (won) await syncRouters(db, deps, [routerUuid]);
  return !!won;
}

/** clears the router's claim or start job `jobUuid` (only that one: a newer claim stays) */
async function clearClaim(db: Db, routerUuid: string, jobUuid: string): Promise<void> {
  await db
    .updateTable('virtualRouters')
    .set({ jobUuid: null, updatedAt: new Date() })
    .where('uuid', '=', routerUuid)
    .where('state', '=', 'Stopped')
    .where('jobUuid', '=', jobUuid)
    .execute();
}

/** Claims the start of a Stopped router and submits its appliance's `vm.start`; false if another caller has it. */
async function claimAndStart(
  db: Db,
  deps: FlowDeps,
  row: RouterLook,
  watched: Set<string>,
  caller: RouterCaller,
): Promise<boolean> {
  const claim = newId();
  const won = await db
    .updateTable('virtualRouters')
    .set({ jobUuid: claim, claimJobUuid: caller.jobUuid, updatedAt: new Date() })
    .where('uuid', '=', row.uuid)
    .where('state', '=', 'Stopped')
    .where('jobUuid', 'is', null)
    .returning('uuid')
    .executeTakeFirst();
  if (!won) return false;
  try {
    if (!deps.startApplianceVm) throw new Error('this node cannot start appliance VMs');
    const { jobUuid } = await deps.startApplianceVm(row.vmUuid!);
    watched.add(jobUuid);
    await db
      .updateTable('virtualRouters')
      .set({ jobUuid, updatedAt: new Date() })
      .where('uuid', '=', row.uuid)
      .where('jobUuid', '=', claim)
      .execute();
    return true;
  } catch (err) {
    await clearClaim(db, row.uuid, claim);
    // the appliance moved meanwhile (someone else started or stopped it): look again
    if (err instanceof CloudError && err.reason === 'Conflict') return true;
    throw err;
  }
}

/**
 * One look at a Running or Stopped router for a VM that needs it; `watched` holds the start jobs
 * this caller saw (their failure fails it). Throws `fail(why)` when the router cannot serve.
 */
export async function stepStartable(
  db: Db,
  deps: FlowDeps,
  row: RouterLook,
  watched: Set<string>,
  caller: RouterCaller,
  fail: (why: string, cause?: unknown) => Error,
): Promise<StartStep> {
  const vmState = row.vmState;
  if (vmState && UP.includes(vmState)) {
    if (row.state === 'Running') return 'ready';
    await settleStarted(db, deps, row.uuid);
    return 'again';
  }
  if (!vmState || !DOWN.includes(vmState)) {
    if (row.state === 'Running') return 'ready';
    throw fail(`its appliance VM is ${vmState ?? 'gone'}`);
  }
  if (row.state === 'Running') {
    await markStopped(db, row.uuid);
    return 'again';
  }
  // Stopped: wait while the appliance is on its way (its own start or stop job)
  if (vmState !== 'Stopped' || row.vmTask) return 'wait';
  if (row.jobUuid) {
    if (!row.jobState) {
      // a claim whose start was never submitted: wait while its caller's job lives
      if (!(await claimOrphaned(caller, row))) return 'wait';
      await clearClaim(db, row.uuid, row.jobUuid);
      return 'again';
    }
    if (!FINISHED.includes(row.jobState)) {
      watched.add(row.jobUuid);
      return 'wait';
    }
    // the start ended and the appliance is stopped: it failed (or was stopped again at once)
    await clearClaim(db, row.uuid, row.jobUuid);
    if (watched.has(row.jobUuid) && row.jobState !== 'Succeeded')
      throw fail('its appliance VM could not be started');
    return 'again';
  }
  try {
    await claimAndStart(db, deps, row, watched, caller);
  } catch (err) {
    throw fail(
      `its appliance VM could not be started: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  return 'wait';
}
