/**
 * Virtual routers made on demand (docs/network.md "Virtual routers"): the first VM that needs the
 * router of a virtual-router L3 makes it, every other VM waits for it — however many arrive at
 * once, on however many nodes:
 *
 * - the router row is INSERTed with ON CONFLICT DO NOTHING on `virtual_routers_l3_key`: exactly
 *   one caller wins and submits the appliance VM create (deps.createApplianceVm); the others find
 *   the row;
 * - everyone (the winner included) polls the row and the appliance job: when the job has
 *   finished, whoever sees it first finishes the row with a conditional UPDATE (`state =
 *   'Creating' and job_uuid = <that job>`) — Running with the appliance's addresses, then the
 *   whole configuration is sent; or Error. So a winner whose node died is replaced by any waiter;
 * - a VM that finds the row in Error takes it over (UPDATE … WHERE state = 'Error': exactly one
 *   retrier wins) and makes a new appliance; a VM that was waiting when it went to Error fails
 *   with VIRTUAL_ROUTER_FAILED naming the L3;
 * - the row names the VM job that made it (`claim_job_uuid`): a row left Creating without an
 *   appliance job (its maker died between the INSERT and the submission) is turned to Error as
 *   soon as that job is gone (ended, vanished, its node dead; engine/owners.ts) — or after
 *   ORPHAN_MS when no maker is recorded — and then retried as above; recovery's sweep
 *   (`reclaimRouterClaims`) does the same without waiting for the next VM;
 * - a router whose appliance VM is stopped is started again, by one caller, and sent its whole
 *   configuration (start.ts); the others wait for it.
 * The wait runs outside the engine's running-job slots (StepContext.idle): the appliance create
 * is a job too, and must get a slot while a hundred VMs wait for it.
 */
import { sql } from 'kysely';
import type { Db } from '../../../db/pool.js';
import type { StepContext } from '../../../engine/flow.js';
import { liveJobs } from '../../../engine/owners.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import type { FlowDeps } from '../../service.js';
import { claimOrphaned, ORPHAN_MS, type RouterCaller } from './claims.js';
import { stepStartable } from './start.js';
import { syncRouters } from './sync.js';

export const ROUTER_POLL_MS = 200;
export const ROUTER_TIMEOUT_MS = 120_000;
export { ORPHAN_MS } from './claims.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function routerFailed(l3Uuid: string, why: string, cause?: unknown): CloudError {
  return new CloudError(
    'Unavailable',
    'VIRTUAL_ROUTER_FAILED',
    `the virtual router of L3 network ${l3Uuid} could not be made: ${why}`,
    { details: { l3NetworkUuid: l3Uuid }, ...(cause === undefined ? {} : { cause }) },
  );
}

interface GuestL3 {
  uuid: string;
  name: string;
  accountUuid: string;
  zoneUuid: string;
  provider: string | null;
  virtualRouterOfferingUuid: string | null;
}

/** the L3's offering, or the zone's default one (Enabled) */
async function offeringOf(db: Db, l3: GuestL3) {
  const q = db.selectFrom('virtualRouterOfferings').selectAll();
  const offering = await (l3.virtualRouterOfferingUuid
    ? q.where('uuid', '=', l3.virtualRouterOfferingUuid)
    : q.where('zoneUuid', '=', l3.zoneUuid).where('isDefault', '=', true)
  ).executeTakeFirst();
  if (!offering)
    throw routerFailed(l3.uuid, 'it names no virtual-router offering and its zone has no default one');
  if (offering.state !== 'Enabled')
    throw routerFailed(l3.uuid, `offering ${offering.name} is ${offering.state}`);
  return offering;
}

/** Submits the appliance VM of a router this caller just created (or took over). */
async function launch(db: Db, deps: FlowDeps, routerUuid: string, l3: GuestL3): Promise<void> {
  try {
    if (!deps.createApplianceVm) throw new Error('this node cannot create appliance VMs');
    const offering = await offeringOf(db, l3);
    const gateway = await db
      .selectFrom('ipRanges')
      .select('gateway')
      .where('l3NetworkUuid', '=', l3.uuid)
      .where('type', '=', 'normal')
      .where('gateway', 'is not', null)
      .orderBy('firstNumber')
      .executeTakeFirst();
    if (!gateway?.gateway) throw routerFailed(l3.uuid, 'it has no IP range with a gateway');
    await db
      .updateTable('virtualRouters')
      .set({ offeringUuid: offering.uuid })
      .where('uuid', '=', routerUuid)
      .execute();
    const nics: Array<{ l3NetworkUuid: string; ip?: string; allowGateway?: boolean }> = [
      { l3NetworkUuid: offering.managementL3NetworkUuid },
    ];
    // a management network that is also the public one gives the router one uplink
    if (offering.publicL3NetworkUuid !== offering.managementL3NetworkUuid)
      nics.push({ l3NetworkUuid: offering.publicL3NetworkUuid });
    nics.push({ l3NetworkUuid: l3.uuid, ip: gateway.gateway, allowGateway: true });
    const { vmUuid, jobUuid } = await deps.createApplianceVm({
      routerUuid,
      name: `vr-${l3.name}`.slice(0, 120),
      imageUuid: offering.imageUuid,
      cpu: offering.cpu,
      memory: offering.memory,
      zoneUuid: l3.zoneUuid,
      nics,
    });
    await db
      .updateTable('virtualRouters')
      .set({ vmUuid, jobUuid, updatedAt: new Date() })
      .where('uuid', '=', routerUuid)
      .where('state', '=', 'Creating')
      .execute();
  } catch (err) {
    await db
      .updateTable('virtualRouters')
      .set({ state: 'Error', status: 'Disconnected', updatedAt: new Date() })
      .where('uuid', '=', routerUuid)
      .where('state', '=', 'Creating')
      .where('jobUuid', 'is', null)
      .execute();
    throw err instanceof CloudError && err.code === 'VIRTUAL_ROUTER_FAILED'
      ? err
      : routerFailed(l3.uuid, err instanceof Error ? err.message : String(err), err);
  }
}

/**
 * The appliance job finished: Running with its addresses (then its configuration is sent), or
 * Error. Conditional on the row still waiting for that very job, so exactly one caller does it.
 */
export async function finish(db: Db, deps: FlowDeps, routerUuid: string, jobUuid: string, ok: boolean) {
  if (!ok) {
    await db
      .updateTable('virtualRouters')
      .set({ state: 'Error', status: 'Disconnected', updatedAt: new Date() })
      .where('uuid', '=', routerUuid)
      .where('state', '=', 'Creating')
      .where('jobUuid', '=', jobUuid)
      .execute();
    return;
  }
  const won = await db
    .updateTable('virtualRouters as r')
    .set({
      state: 'Running',
      status: 'Connecting',
      updatedAt: new Date(),
      // the appliance's address on each network its offering names
      guestIp: sql`(select n.ip from vm_nics n where n.vm_uuid = r.vm_uuid and n.l3_network_uuid = r.l3_network_uuid limit 1)`,
      publicIp: sql`(select n.ip from vm_nics n join virtual_router_offerings o on o.uuid = r.offering_uuid
        where n.vm_uuid = r.vm_uuid and n.l3_network_uuid = o.public_l3_network_uuid limit 1)`,
      managementIp: sql`(select n.ip from vm_nics n join virtual_router_offerings o on o.uuid = r.offering_uuid
        where n.vm_uuid = r.vm_uuid and n.l3_network_uuid = o.management_l3_network_uuid limit 1)`,
    })
    .where('r.uuid', '=', routerUuid)
    .where('r.state', '=', 'Creating')
    .where('r.jobUuid', '=', jobUuid)
    .returning('r.uuid')
    .executeTakeFirst();
  if (won) await syncRouters(db, deps, [routerUuid]);
}

/**
 * A router appliance's create is being rolled back (its VM row is about to be deleted): the
 * router lets go of the VM and, if it was waiting for it, goes to Error — for the next VM to
 * take over. Without this the row's reference would block the VM row's delete, and a router
 * whose waiters all died with their node (a crash) would be left Creating for good.
 */
export async function releaseRouterAppliance(db: Db, routerUuid: string, vmUuid: string): Promise<void> {
  await db
    .updateTable('virtualRouters')
    .set({
      vmUuid: null,
      state: sql<string>`case when state = 'Creating' then 'Error' else state end`,
      status: sql<string>`case when state = 'Creating' then 'Disconnected' else status end`,
      updatedAt: new Date(),
    })
    .where('uuid', '=', routerUuid)
    .where('vmUuid', '=', vmUuid)
    .execute();
}

/** Returns once the L3's router is Running; throws VIRTUAL_ROUTER_FAILED otherwise. */
async function ensureOne(
  db: Db,
  deps: FlowDeps,
  l3Uuid: string,
  timeoutMs: number,
  caller: RouterCaller,
): Promise<void> {
  const l3 = await db
    .selectFrom('l3Networks')
    .select(['uuid', 'name', 'accountUuid', 'zoneUuid', 'provider', 'virtualRouterOfferingUuid'])
    .where('uuid', '=', l3Uuid)
    .executeTakeFirst();
  if (!l3) throw routerFailed(l3Uuid, 'the L3 network is gone');
  if (l3.provider !== 'virtual-router') return;
  const deadline = Date.now() + timeoutMs;
  // an Error or missing row found at the first look is retried; one that fails while we wait is not
  let waiting = false;
  // the appliance starts this caller waited for: one that fails fails this caller
  const startsSeen = new Set<string>();
  for (;;) {
    const row = await db
      .selectFrom('virtualRouters as r')
      .leftJoin('jobs as j', 'j.uuid', 'r.jobUuid')
      .leftJoin('vms as v', 'v.uuid', 'r.vmUuid')
      .select([
        'r.uuid',
        'r.state',
        'r.jobUuid',
        'r.claimJobUuid',
        'r.updatedAt',
        'r.vmUuid',
        'j.state as jobState',
        'v.state as vmState',
        'v.task as vmTask',
      ])
      .where('r.l3NetworkUuid', '=', l3Uuid)
      .executeTakeFirst();
    if (!row) {
      if (waiting) throw routerFailed(l3Uuid, 'the router was deleted while it was being made');
      const offering = await offeringOf(db, l3);
      const made = await db
        .insertInto('virtualRouters')
        .values({
          uuid: newId(),
          name: `vr-${l3.name}`.slice(0, 120),
          description: null,
          accountUuid: l3.accountUuid,
          l3NetworkUuid: l3Uuid,
          offeringUuid: offering.uuid,
          state: 'Creating',
          status: 'Connecting',
          claimJobUuid: caller.jobUuid,
        })
        .onConflict((oc) => oc.column('l3NetworkUuid').doNothing())
        .returning('uuid')
        .executeTakeFirst();
      if (made) await launch(db, deps, made.uuid, l3);
      waiting = true;
      continue;
    }
    switch (row.state) {
      case 'Running':
      case 'Stopped': {
        // a router whose appliance is stopped is started again (start.ts)
        const step = await stepStartable(db, deps, row, startsSeen, caller, (why, cause) =>
          routerFailed(l3Uuid, why, cause),
        );
        if (step === 'ready') return;
        if (step === 'again' && Date.now() <= deadline) continue;
        break;
      }
      case 'Error': {
        if (waiting) throw routerFailed(l3Uuid, 'its appliance VM could not be created');
        const taken = await db
          .updateTable('virtualRouters')
          .set({
            state: 'Creating',
            status: 'Connecting',
            jobUuid: null,
            vmUuid: null,
            claimJobUuid: caller.jobUuid,
            updatedAt: new Date(),
          })
          .where('uuid', '=', row.uuid)
          .where('state', '=', 'Error')
          .returning('uuid')
          .executeTakeFirst();
        if (taken) await launch(db, deps, taken.uuid, l3);
        waiting = true;
        continue;
      }
      case 'Creating':
        waiting = true;
        if (row.jobUuid && row.jobState && ['Succeeded', 'Failed', 'Cancelled'].includes(row.jobState))
          await finish(db, deps, row.uuid, row.jobUuid, row.jobState === 'Succeeded');
        else if (!row.jobUuid && (await claimOrphaned(caller, row))) {
          const orphaned = await db
            .updateTable('virtualRouters')
            .set({ state: 'Error', status: 'Disconnected', updatedAt: new Date() })
            .where('uuid', '=', row.uuid)
            .where('state', '=', 'Creating')
            .where('jobUuid', 'is', null)
            .where('updatedAt', '=', row.updatedAt)
            .executeTakeFirst();
          // its maker died before launching the appliance: nothing failed, so this caller takes
          // the router over at once (next turn) instead of failing its own VM
          if (Number(orphaned.numUpdatedRows) === 1) {
            waiting = false;
            continue;
          }
        }
        break;
      default:
        throw routerFailed(l3Uuid, `its router is ${row.state}`);
    }
    if (Date.now() > deadline) throw routerFailed(l3Uuid, `it was not Running after ${timeoutMs / 1000} s`);
    await sleep(ROUTER_POLL_MS);
  }
}

/**
 * Makes sure each virtual-router L3 of `l3NetworkUuids` has a Running router (L3s with another
 * provider are skipped). Called by the VM create chain (apply-network-services) for every VM
 * but router appliances themselves.
 */
export async function ensureVirtualRouters(
  ctx: Pick<StepContext<unknown, FlowDeps>, 'db' | 'deps' | 'idle' | 'owners'> & { job?: { uuid: string } },
  l3NetworkUuids: string[],
  timeoutMs = ROUTER_TIMEOUT_MS,
): Promise<void> {
  const l3s = [...new Set(l3NetworkUuids)];
  if (l3s.length === 0) return;
  const owners = ctx.owners;
  const caller: RouterCaller = {
    jobUuid: ctx.job?.uuid ?? null,
    gone: owners ? (job) => owners.gone(job) : async () => false,
  };
  const wait = async () => {
    const results = await Promise.allSettled(
      l3s.map((l3) => ensureOne(ctx.db, ctx.deps, l3, timeoutMs, caller)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  await (ctx.idle ? ctx.idle(wait) : wait());
}

/**
 * Recovery's sweep (engine reclaimer) over router claims whose maker is gone: a row Creating
 * without an appliance job goes to Error (the next VM takes it over), and a start claim never
 * turned into a start job is cleared (the next VM claims it again). A row without a recorded
 * maker counts as orphaned after ORPHAN_MS. Returns how many it released.
 */
export async function reclaimRouterClaims(db: Db, deadAfterMs: number): Promise<number> {
  const orphan = sql<boolean>`(claim_job_uuid not in ${liveJobs(db, deadAfterMs)}
    or (claim_job_uuid is null and updated_at < now() - make_interval(secs => ${ORPHAN_MS / 1000})))`;
  const creating = await db
    .updateTable('virtualRouters')
    .set({ state: 'Error', status: 'Disconnected', updatedAt: new Date() })
    .where('state', '=', 'Creating')
    .where('jobUuid', 'is', null)
    .where(orphan)
    .executeTakeFirst();
  // a start claim is a token that names no job (start.ts); a submitted start names its job
  const claims = await db
    .updateTable('virtualRouters as r')
    .set({ jobUuid: null, updatedAt: new Date() })
    .where('r.state', '=', 'Stopped')
    .where('r.jobUuid', 'is not', null)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('jobs as j').select('j.uuid').whereRef('j.uuid', '=', 'r.jobUuid'))),
    )
    .where(orphan)
    .executeTakeFirst();
  return Number(creating.numUpdatedRows) + Number(claims.numUpdatedRows);
}
