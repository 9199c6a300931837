/**
 * The health scanner: one pass over the Active leases this node owns (rendezvous ownership, as
 * the lease clock: each lease is looked after by exactly one live node). A leased VM that is not
 * working — Stopped behind its holder's back (crashed, killed; not stopped by an operation) or
 * in Error — is healed up the ladder of stages.ts: restart, then rebuild, then migrate; a VM
 * none of them brings back is marked (lease `health` Unhealable) and its holder told.
 *
 * Progress lives in `vm_heals` (stage, step, the host it broke on); each step is an ordinary VM
 * job whose request id names the step, so the pass that follows — on this node or, after a
 * crash, another — finds the job instead of submitting it again, and never waits for it.
 * Events, all on the lease, to its holder's account: `lease.heal.started`, `lease.heal.attempt`
 * (each job), `lease.heal.failed` (a stage failed), `lease.healed`, `lease.unhealable`. The mark
 * goes when the VM runs again (someone else brought it back) or the lease stops being Active.
 *
 * Not healed here: a VM its holder stopped or paused (their choice), a VM with an operation in
 * flight (next pass), a VM whose host is Disconnected (state Unknown: it may still run there,
 * and without fencing starting it elsewhere could run it twice), the warm stock (a broken Ready
 * VM is replaced by the stock pass: nobody holds it, a fresh one is as cheap as a rebuild).
 */
import { sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import type { HealStage } from '../../../db/schema-pool-health.js';
import { CloudError } from '../../../kernel/errors.js';
import { resourceEvent } from '../../common.js';
import { submitOperation } from '../../compute/vm/operations.js';
import { rebuildParams } from '../../compute/vm/rebuild.js';
import type { ServiceContext } from '../../service.js';
import { leaseFamily } from '../lease/model.js';
import { nextStage, STEP_TRIES, stageSteps, stepPrefix, stepRequestId } from './stages.js';

export interface HealthResult {
  started: number;
  attempts: number;
  healed: number;
  unhealable: number;
}

interface Candidate {
  leaseUuid: string;
  accountUuid: string;
  vmUuid: string;
  vmAccountUuid: string;
  state: string;
  task: string | null;
  hostUuid: string | null;
  lastHostUuid: string | null;
  stage: HealStage | null;
  step: number | null;
  healHost: string | null;
  startedAt: Date | null;
}

/** steps one VM may take in one pass (a job that succeeded is followed by the next at once) */
const STEPS_PER_PASS = 4;

export async function healthPass(ctx: ServiceContext, allNodes = false): Promise<HealthResult> {
  const mine = allNodes ? sql<boolean>`true` : ownedBy('l', ctx.engine.nodeId);
  // healing of leases that ended or stopped meanwhile is over (a renewal starts the VM itself)
  await sql`
    with gone as (
      delete from vm_heals h using leases l where l.uuid = h.lease_uuid and l.state <> 'Active'
      returning h.lease_uuid)
    update leases set health = 'Healthy' where uuid in (select lease_uuid from gone)`.execute(ctx.db);
  // an Unhealable VM someone brought back (its holder, an admin) is no longer marked
  await sql`
    update leases l set health = 'Healthy' from vms v
    where v.uuid = l.vm_uuid and l.health = 'Unhealable' and v.state = 'Running' and v.task is null
      and ${mine}`.execute(ctx.db);
  const { rows } = await sql<Candidate>`
    select l.uuid as lease_uuid, l.account_uuid, v.uuid as vm_uuid, v.account_uuid as vm_account_uuid,
      v.state, v.task, v.host_uuid, v.last_host_uuid,
      h.stage, h.step, h.host_uuid as heal_host, h.started_at
    from leases l
    join vms v on v.uuid = l.vm_uuid
    left join vm_heals h on h.vm_uuid = v.uuid
    where l.state = 'Active' and l.health <> 'Unhealable'
      and (h.vm_uuid is not null or (v.state in ('Stopped', 'Error') and v.task is null))
      and ${mine}`.execute(ctx.db);
  const result: HealthResult = { started: 0, attempts: 0, healed: 0, unhealable: 0 };
  for (const c of rows) {
    try {
      await healOne(ctx, c, result);
    } catch (err) {
      ctx.deps.log.warn({ err, vm: c.vmUuid, lease: c.leaseUuid }, 'health scan: one VM not handled');
    }
  }
  return result;
}

/** A VM stopped by an operation (its holder's stop) was meant to be: its last change says so. */
async function stoppedOnPurpose(ctx: ServiceContext, vmUuid: string): Promise<boolean> {
  const last = await ctx.db
    .selectFrom('events')
    .select('data')
    .where('resourceUuid', '=', vmUuid)
    .where('type', '=', 'vm.state.changed')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return (last?.data as { operation?: string } | undefined)?.operation === 'stop';
}

async function leaseEvent(ctx: ServiceContext, c: Candidate, type: string, data: Record<string, unknown>) {
  const stored = await ctx.deps.events.write(ctx.db, [
    resourceEvent(leaseFamily, { uuid: c.leaseUuid, accountUuid: c.accountUuid }, type, {
      vmUuid: c.vmUuid,
      ...data,
    }),
  ]);
  ctx.deps.events.publish(stored);
}

async function healOne(ctx: ServiceContext, c: Candidate, result: HealthResult): Promise<void> {
  if (c.stage === null) {
    if (c.state === 'Stopped' && (await stoppedOnPurpose(ctx, c.vmUuid))) return;
    const host = c.hostUuid ?? c.lastHostUuid;
    const started = await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
      const row = await tx
        .insertInto('vmHeals')
        .values({ vmUuid: c.vmUuid, leaseUuid: c.leaseUuid, stage: 'restart', hostUuid: host })
        .onConflict((oc) => oc.column('vmUuid').doNothing())
        .returning(['startedAt'])
        .executeTakeFirst();
      if (!row) return undefined;
      await tx.updateTable('leases').set({ health: 'Healing' }).where('uuid', '=', c.leaseUuid).execute();
      batch.add(
        resourceEvent(leaseFamily, { uuid: c.leaseUuid, accountUuid: c.accountUuid }, 'heal.started', {
          vmUuid: c.vmUuid,
          vmState: c.state,
          hostUuid: host,
        }),
      );
      return row.startedAt;
    });
    if (!started) return;
    result.started++;
    Object.assign(c, { stage: 'restart', step: 0, healHost: host, startedAt: started });
  }
  for (let i = 0; i < STEPS_PER_PASS; i++) if (!(await advance(ctx, c, result))) return;
}

/** One move of the ladder; true when the pass may take the next at once. */
async function advance(ctx: ServiceContext, c: Candidate, result: HealthResult): Promise<boolean> {
  const stage = c.stage!;
  const step = c.step!;
  const steps = stageSteps(stage, c.healHost);
  const tries = await ctx.db
    .selectFrom('jobs')
    .select(['uuid', 'state', 'error'])
    .where('resourceUuid', '=', c.vmUuid)
    .where('requestId', 'like', `${stepPrefix(c.vmUuid, c.startedAt!, stage, step)}:%`)
    .orderBy('createdAt', 'desc')
    .execute();
  const requestId = stepRequestId(c.vmUuid, c.startedAt!, stage, step, tries.length);
  const interrupted = (e: unknown) => (e as { code?: string } | null)?.code === 'JOB_INTERRUPTED';
  let job: (typeof tries)[number] | undefined = tries[0];
  if (job && (job.state === 'Pending' || job.state === 'Running')) return false;
  // its node died under it: that says nothing about the VM, the step is tried again
  if (job?.state === 'Failed' && interrupted(job.error) && tries.length < STEP_TRIES) job = undefined;
  if (job?.state === 'Succeeded') {
    if (step + 1 < steps.length) return moveTo(ctx, c, stage, step + 1);
    const vm = await ctx.db
      .selectFrom('vms')
      .select(['state', 'task', 'hostUuid'])
      .where('uuid', '=', c.vmUuid)
      .executeTakeFirst();
    if (vm?.state === 'Running' && vm.task === null) {
      await healed(ctx, c, stage, vm.hostUuid);
      result.healed++;
      return false;
    }
    return failStage(
      ctx,
      c,
      stage,
      { code: 'VM_NOT_RUNNING', message: `the vm is ${vm?.state ?? 'gone'}` },
      result,
    );
  }
  if (job) return failStage(ctx, c, stage, job.error, result);
  // nothing submitted for this step yet
  const vm = await ctx.db
    .selectFrom('vms')
    .select(['uuid', 'accountUuid', 'state', 'task'])
    .where('uuid', '=', c.vmUuid)
    .executeTakeFirst();
  if (!vm) return false;
  if (vm.task !== null) return false; // another operation holds it: next pass
  if (vm.state === 'Running') {
    // it came back by itself (a host that answered again) before this step was tried
    await healed(ctx, c, 'itself', null);
    result.healed++;
    return false;
  }
  const next = steps[step]!;
  if (next.onlyFrom && !next.onlyFrom.includes(vm.state)) return moveTo(ctx, c, stage, step + 1);
  try {
    const params = next.op === 'rebuild' ? await rebuildParams(ctx.db, vm.uuid) : next.params;
    const submitted = await submitOperation(ctx, { userUuid: null, requestId }, vm, next.op, params);
    result.attempts++;
    await leaseEvent(ctx, c, 'heal.attempt', {
      stage,
      operation: next.op,
      jobUuid: submitted.uuid,
      hostUuid: c.healHost,
    });
  } catch (err) {
    if (err instanceof CloudError && err.code === 'VM_BUSY') return false;
    // the VM's state refuses the step (it is neither what this stage can work on): the stage failed
    const e = err instanceof CloudError ? { code: err.code, message: err.message } : { message: String(err) };
    return failStage(ctx, c, stage, e, result);
  }
  return false;
}

async function moveTo(ctx: ServiceContext, c: Candidate, stage: HealStage, step: number): Promise<boolean> {
  await ctx.db
    .updateTable('vmHeals')
    .set({ stage, step, updatedAt: new Date() })
    .where('vmUuid', '=', c.vmUuid)
    .execute();
  c.stage = stage;
  c.step = step;
  return true;
}

async function failStage(
  ctx: ServiceContext,
  c: Candidate,
  stage: HealStage,
  error: unknown,
  result: HealthResult,
): Promise<boolean> {
  await leaseEvent(ctx, c, 'heal.failed', { stage, error });
  const next = nextStage(stage);
  if (next) return moveTo(ctx, c, next, 0);
  await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    await tx.deleteFrom('vmHeals').where('vmUuid', '=', c.vmUuid).execute();
    await tx.updateTable('leases').set({ health: 'Unhealable' }).where('uuid', '=', c.leaseUuid).execute();
    batch.add(
      resourceEvent(leaseFamily, { uuid: c.leaseUuid, accountUuid: c.accountUuid }, 'unhealable', {
        vmUuid: c.vmUuid,
        hostUuid: c.healHost,
        tried: ['restart', 'rebuild', 'migrate'],
        remedy: 'release the lease: the pool destroys this VM and you may take a fresh one',
      }),
    );
  });
  result.unhealable++;
  return false;
}

async function healed(ctx: ServiceContext, c: Candidate, by: HealStage | 'itself', hostUuid: string | null) {
  await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    await tx.deleteFrom('vmHeals').where('vmUuid', '=', c.vmUuid).execute();
    await tx.updateTable('leases').set({ health: 'Healthy' }).where('uuid', '=', c.leaseUuid).execute();
    batch.add(
      resourceEvent(leaseFamily, { uuid: c.leaseUuid, accountUuid: c.accountUuid }, 'healed', {
        vmUuid: c.vmUuid,
        by,
        hostUuid,
        movedFrom: hostUuid && c.healHost && hostUuid !== c.healHost ? c.healHost : undefined,
      }),
    );
  });
}
