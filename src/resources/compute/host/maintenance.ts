/**
 * Host maintenance (`host.maintain`): the host stops taking new VMs and its VMs leave it.
 *
 *   enter-pre-maintenance  state → PreMaintenance: from here no placement reserves the host
 *                          (reserveHost requires an Enabled host, the scheduler filters it out)
 *   evacuate               every Running VM on the host live-migrates away through the ordinary
 *                          vm.migrate chain, submitted as the system (a journaled, resumable job
 *                          of its own), at most `maintenanceMigrationParallelism` at once; VMs
 *                          that cannot move follow the policy: 'stop' stops them (vm.stop, they
 *                          stay Stopped and are placed elsewhere when started), 'fail' fails the
 *                          job naming them once the others have moved
 *   mark-maintenance       state → Maintenance
 *
 * The database is the evacuation's only memory: each pass lists the VMs still holding the host
 * (or arriving on it), counts those Migrating as the migrations in flight and waits for the jobs
 * of the VMs that are busy, without holding a running slot (`ctx.idle`). So the step may run
 * again after a crash (recovery: resume) and picks up the moves where they are. A failed or
 * interrupted evacuation rolls the host to Maintenance, not back to Enabled: nothing new lands on
 * a host the admin wanted emptied; `enable` brings it back. `enable` or `disable` during the
 * evacuation ends it (the job fails with HOST_MAINTENANCE_ENDED, the moves already made stay).
 */
import type { FlowDef, StepContext } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { TRANSITIONAL_STATES, type VmState } from '../../../kernel/vm-states.js';
import { readRow, resourceEvent } from '../../common.js';
import type { FlowDeps, ServiceContext } from '../../service.js';
import { migrationRefusal } from '../vm/migrate.js';
import { applianceOf } from '../vm/network-steps.js';
import { submitOperation } from '../vm/operations.js';
import { vmRow } from '../vm/transitions.js';
import { hostFamily } from './flows.js';

export type MaintenancePolicy = 'fail' | 'stop';

export interface MaintainParams {
  uuid: string;
  policy?: MaintenancePolicy;
}

type Ctx = StepContext<MaintainParams, FlowDeps>;

/** how long one wait for a busy VM's job lasts before the pass looks again */
const WAIT_SLICE_MS = 5_000;
const NO_JOB_PAUSE_MS = 200;
const STOPPABLE: readonly VmState[] = ['Running', 'Paused', 'Unknown', 'Error'];

async function setState(ctx: Ctx, to: 'PreMaintenance' | 'Maintenance', from?: string): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    let q = tx
      .updateTable('hosts')
      .set({ state: to, updatedAt: new Date() })
      .where('uuid', '=', ctx.params.uuid);
    if (from) q = q.where('state', '=', from as never);
    const row = await q.returning(['uuid', 'accountUuid']).executeTakeFirst();
    if (row)
      batch.add({ ...resourceEvent(hostFamily, row, 'state.changed', { state: to }), jobUuid: ctx.job.uuid });
    return row !== undefined;
  });
}

/** The VMs holding the host, or arriving on it (a migration to it admitted before maintenance). */
function vmsOnHost(ctx: Ctx) {
  const host = ctx.params.uuid;
  return ctx.db
    .selectFrom('vms')
    .selectAll()
    .where((eb) => eb.or([eb('hostUuid', '=', host), eb('migrationTargetUuid', '=', host)]))
    .orderBy('createdAt')
    .execute();
}

type OnHost = Awaited<ReturnType<typeof vmsOnHost>>[number];

/** Why a settled VM cannot live-migrate off the host, or undefined. */
async function whyUnmovable(ctx: Ctx, vm: OnHost): Promise<string | undefined> {
  if (vm.state !== 'Running') return `it is ${vm.state}, only a Running VM live-migrates`;
  if (applianceOf(vm)) return `it is the appliance of virtual router ${applianceOf(vm)}`;
  const refused = await migrationRefusal(ctx.db, await vmRow(ctx.db, vm.uuid));
  return refused?.message;
}

export function hostMaintainFlow(svc: ServiceContext): FlowDef<MaintainParams, FlowDeps> {
  return {
    kind: 'host.maintain',
    recovery: 'resume',
    steps: [
      {
        name: 'enter-pre-maintenance',
        describe: 'stop placing new VMs on the host',
        async run(ctx) {
          await setState(ctx, 'PreMaintenance');
        },
        // the host never stays half-way: a failed evacuation leaves it in Maintenance
        async rollback(ctx) {
          await setState(ctx, 'Maintenance', 'PreMaintenance');
        },
      },
      {
        name: 'evacuate',
        describe: 'live-migrate the host’s VMs away',
        run: (ctx) => evacuate(svc, ctx),
      },
      {
        name: 'mark-maintenance',
        describe: 'mark the host Maintenance',
        async run(ctx) {
          await setState(ctx, 'Maintenance', 'PreMaintenance');
        },
      },
    ],
    result: (ctx) => readRow(ctx.db, 'hosts', ctx.params.uuid),
  };
}

async function hostEvent(ctx: Ctx, type: string, data: Record<string, unknown>): Promise<void> {
  const host = await ctx.db
    .selectFrom('hosts')
    .select(['uuid', 'accountUuid'])
    .where('uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (host) await ctx.emit([resourceEvent(hostFamily, host, type, data)]);
}

async function assertStillEntering(ctx: Ctx): Promise<void> {
  const host = await ctx.db
    .selectFrom('hosts')
    .select('state')
    .where('uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (host?.state !== 'PreMaintenance')
    throw new CloudError(
      'Conflict',
      'HOST_MAINTENANCE_ENDED',
      `host ${ctx.params.uuid} left PreMaintenance (it is ${host?.state ?? 'gone'}) while its VMs were moving; the moves made stay`,
    );
}

/** Submits `op` on the VM as the system; false when the VM changed under us (the next pass sees it). */
async function submit(svc: ServiceContext, ctx: Ctx, vm: OnHost, op: 'migrate' | 'stop') {
  try {
    const params = op === 'stop' ? { force: false } : {};
    const requestId = `maintain-${ctx.job.uuid}-${op}-${vm.uuid}`;
    return await submitOperation(svc, { userUuid: null, requestId }, vm, op, params);
  } catch (err) {
    if (err instanceof CloudError && err.reason === 'Conflict') return undefined;
    throw err;
  }
}

async function evacuate(svc: ServiceContext, ctx: Ctx): Promise<void> {
  const host = ctx.params.uuid;
  const policy = ctx.params.policy ?? 'fail';
  const limit = Math.max(1, ctx.deps.settings.maintenanceMigrationParallelism);
  /** VMs that cannot leave by migration, and why */
  const cannot = new Map<string, string>();
  /** the jobs this run submitted, to learn which ones failed */
  const submitted = new Map<string, { vm: string; op: 'migrate' | 'stop' }>();
  const stopFailed = new Map<string, string>();
  for (;;) {
    await assertStillEntering(ctx);
    const vms = await vmsOnHost(ctx);
    let inFlight = vms.filter((v) => v.hostUuid === host && v.state === 'Migrating').length;
    const busy: string[] = [];
    for (const vm of vms) {
      if (vm.task !== null || TRANSITIONAL_STATES.includes(vm.state as VmState)) {
        busy.push(vm.uuid);
        continue;
      }
      if (cannot.has(vm.uuid)) {
        if (policy !== 'stop' || stopFailed.has(vm.uuid) || !STOPPABLE.includes(vm.state as VmState))
          continue;
        const job = await submit(svc, ctx, vm, 'stop');
        if (job) submitted.set(job.uuid, { vm: vm.uuid, op: 'stop' });
        busy.push(vm.uuid);
        await hostEvent(ctx, 'maintenance.vm-stopping', { vmUuid: vm.uuid, reason: cannot.get(vm.uuid) });
        continue;
      }
      const why = await whyUnmovable(ctx, vm);
      if (why) {
        cannot.set(vm.uuid, why);
        await hostEvent(ctx, 'maintenance.vm-cannot-move', { vmUuid: vm.uuid, reason: why, policy });
        busy.push(vm.uuid); // looked at again at once: the policy applies on the next pass
        continue;
      }
      if (inFlight >= limit) continue;
      const job = await submit(svc, ctx, vm, 'migrate');
      if (job) {
        inFlight++;
        submitted.set(job.uuid, { vm: vm.uuid, op: 'migrate' });
        await hostEvent(ctx, 'maintenance.vm-migrating', { vmUuid: vm.uuid, jobUuid: job.uuid });
      }
      busy.push(vm.uuid);
    }
    if (vms.length === 0) {
      // the last moves left the host; their jobs are ending: their outcomes become events
      const ending = () =>
        Promise.all([...submitted.keys()].map((uuid) => svc.engine.waitFor(uuid, WAIT_SLICE_MS)));
      await (ctx.idle ? ctx.idle(ending) : ending());
      await learnOutcomes(svc, ctx, submitted, cannot, stopFailed);
      return;
    }
    if (busy.length === 0) break; // only VMs that cannot leave are left
    await waitForAny(svc, ctx, busy);
    await learnOutcomes(svc, ctx, submitted, cannot, stopFailed);
  }
  const still = await vmsOnHost(ctx);
  const named = still.map((v) => ({
    vmUuid: v.uuid,
    reason: stopFailed.get(v.uuid) ?? cannot.get(v.uuid) ?? `it is ${v.state}`,
  }));
  throw new CloudError(
    'Conflict',
    'HOST_VMS_CANNOT_MOVE',
    `host ${host} stays in Maintenance with ${named.length} VM(s) that cannot leave (policy ${policy}): ${named
      .map((n) => `vm ${n.vmUuid}: ${n.reason}`)
      .join('; ')}`,
    { details: { vms: named, policy } },
  );
}

/** Waits (without a running slot) until a job of one of the busy VMs ends, or a slice passes. */
async function waitForAny(svc: ServiceContext, ctx: Ctx, vmUuids: string[]): Promise<void> {
  const wait = async () => {
    const jobs = await ctx.db
      .selectFrom('jobs')
      .select('uuid')
      .where('resourceUuid', 'in', vmUuids)
      .where('state', 'in', ['Pending', 'Running'])
      .execute();
    // a VM just looked at (a refusal to apply) or whose job ended meanwhile: look again soon (a
    // short pause, so a VM left transitional without a job cannot make this loop spin)
    if (jobs.length === 0) {
      await new Promise((r) => setTimeout(r, NO_JOB_PAUSE_MS));
      return;
    }
    await Promise.race(jobs.map((j) => svc.engine.waitFor(j.uuid, WAIT_SLICE_MS)));
  };
  await (ctx.idle ? ctx.idle(wait) : wait());
}

/** A failed move makes its VM one that cannot move (the scheduler found no room, the host failed it). */
async function learnOutcomes(
  svc: ServiceContext,
  ctx: Ctx,
  submitted: Map<string, { vm: string; op: 'migrate' | 'stop' }>,
  cannot: Map<string, string>,
  stopFailed: Map<string, string>,
): Promise<void> {
  if (submitted.size === 0) return;
  const ended = await svc.db
    .selectFrom('jobs')
    .select(['uuid', 'state', 'error'])
    .where('uuid', 'in', [...submitted.keys()])
    .where('state', 'in', ['Succeeded', 'Failed', 'Cancelled'])
    .execute();
  for (const job of ended) {
    const { vm, op } = submitted.get(job.uuid)!;
    submitted.delete(job.uuid);
    if (job.state === 'Succeeded') {
      await hostEvent(ctx, op === 'migrate' ? 'maintenance.vm-moved' : 'maintenance.vm-stopped', {
        vmUuid: vm,
      });
      continue;
    }
    const error = job.error as { code?: string; message?: string } | null;
    const why = `its ${op} failed: ${error?.code ?? job.state}${error?.message ? ` (${error.message})` : ''}`;
    if (op === 'migrate') {
      cannot.set(vm, why);
      await hostEvent(ctx, 'maintenance.vm-cannot-move', {
        vmUuid: vm,
        reason: why,
        policy: ctx.params.policy ?? 'fail',
      });
    } else stopFailed.set(vm, why);
  }
}
