/**
 * Host HA (`host.ha-recover`, submitted by the reconciler: vm/ha-triggers.ts): a host of a
 * cluster with host HA on has stopped answering. Nothing of it is restarted elsewhere before it
 * is confirmed fenced, so a VM never runs twice on shared disks.
 *
 *   fence         the host's fence driver (drivers/fence/: simulator, IPMI, agent self-fence)
 *                 until it confirms; a failure is an event (`host.ha.fence-failed`, with why) and
 *                 is tried again after `hostFenceRetrySeconds` (doubling up to 5 min),
 *                 restarting nothing meanwhile. Ends
 *                 without a fence when the host answers again or host HA is turned off. On
 *                 success `fencedAt` is set (the reconciler then destroys any guest the host
 *                 reports if it comes back: nothing it ran is brought back on it).
 *   list-vms      journals the VMs to restart: those of HA level restart-on-host-failure whose
 *                 volumes are all on shared storage; one with a volume on local storage is
 *                 reported not recoverable (`host.ha.vm-not-recoverable`) and stays Unknown, as
 *                 do the VMs without host HA
 *   release-vms   each listed VM → Stopped, off the fenced host (its capacity given back there,
 *                 its NICs on no host); conditional on the state seen, so it is idempotent
 *   restart-vms   `vm.start` of each, as the system, never on the fenced host: the ordinary
 *                 start chain, so each keeps its UUID, NICs and addresses, and volumes; the jobs'
 *                 outcomes become events (`host.ha.vm-restarted`, `host.ha.vm-restart-failed`)
 *
 * Recovery resumes the chain (each step may run again; the starts carry a request id per job
 * and VM, so a resumed step finds the start it submitted instead of starting twice). There is
 * nothing to roll back: a fence cannot be undone, and a VM released from a fenced host must
 * not be put back on it — a step that fails ends the job, and the next reconcile pass submits
 * a new one, which resumes from the database (a fenced host is not fenced again).
 */
import { type FenceTarget, fenceDriverFor } from '../../../drivers/fence/index.js';
import type { FlowDef, StepContext } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { readRow, resourceEvent } from '../../common.js';
import type { FlowDeps, ServiceContext } from '../../service.js';
import { HOST_HA_RECOVER } from '../vm/ha-triggers.js';
import { releaseHost } from '../vm/host-capacity.js';
import { vmFamily } from '../vm/model.js';
import { submitOperation } from '../vm/operations.js';
import { placeNics } from '../vm-nic/nics.js';
import { hostFamily } from './flows.js';

interface RecoverParams {
  uuid: string;
}
type Ctx = StepContext<RecoverParams, FlowDeps>;

const LIVE = ['Unknown', 'Running', 'Paused'] as const;
const WAIT_SLICE_MS = 5_000;
/** a failing fence is tried again after hostFenceRetrySeconds, doubling up to this */
const MAX_RETRY_MS = 300_000;

async function hostEvent(ctx: Ctx, type: string, data: Record<string, unknown>): Promise<void> {
  const host = await ctx.db
    .selectFrom('hosts')
    .select(['uuid', 'accountUuid'])
    .where('uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (host) await ctx.emit([{ ...resourceEvent(hostFamily, host, type, data), jobUuid: ctx.job.uuid }]);
}

const pause = (ctx: Ctx, ms: number) => {
  const wait = () => new Promise<void>((r) => setTimeout(r, ms));
  return ctx.idle ? ctx.idle(wait) : wait();
};

async function fence(ctx: Ctx): Promise<void> {
  ctx.data.silentSince ??= new Date().toISOString();
  for (let attempt = 1; ; attempt++) {
    const host = await ctx.db
      .selectFrom('hosts as h')
      .innerJoin('clusters as c', 'c.uuid', 'h.clusterUuid')
      .leftJoin('hostFenceCredentials as f', 'f.hostUuid', 'h.uuid')
      .select([
        'h.uuid',
        'h.managementIp',
        'h.hypervisorType',
        'h.status',
        'h.fencedAt',
        'c.hostHa',
        'f.address as ipmiAddress',
        'f.username as ipmiUsername',
        'f.password as ipmiPassword',
      ])
      .where('h.uuid', '=', ctx.params.uuid)
      .executeTakeFirst();
    if (!host) throw new CloudError('NotFound', 'HOST_NOT_FOUND', `host ${ctx.params.uuid} is gone`);
    if (host.fencedAt) return; // fenced before a crash: the fence is not repeated
    const skip =
      host.status !== 'Disconnected' ? 'it answers again' : !host.hostHa ? 'host HA was turned off' : '';
    if (skip) {
      ctx.data.skipped = skip;
      await hostEvent(ctx, 'ha.recovery-skipped', { reason: `${skip}: nothing fenced, nothing restarted` });
      return;
    }
    const target: FenceTarget = {
      uuid: host.uuid,
      managementIp: host.managementIp,
      hypervisorType: host.hypervisorType,
      silentSince: new Date(ctx.data.silentSince as string),
      ...(host.ipmiAddress
        ? { ipmi: { address: host.ipmiAddress, username: host.ipmiUsername!, password: host.ipmiPassword! } }
        : {}),
    };
    const driver = fenceDriverFor(ctx.deps.fences, { ...host, hasIpmi: host.ipmiAddress !== null });
    // every failure is an event: a BMC that stays unreachable is tried less and less often
    const base = ctx.deps.settings.hostFenceRetrySeconds * 1000;
    let retryMs = Math.min(base * 2 ** Math.min(attempt - 1, 10), Math.max(base, MAX_RETRY_MS));
    try {
      const outcome = await driver.fence(target);
      if (outcome.state === 'fenced') {
        if (await markFenced(ctx, outcome.method, outcome.detail)) return;
        continue; // it answered meanwhile: the next look ends the chain with nothing recovered
      }
      if (attempt === 1)
        await hostEvent(ctx, 'ha.fence-pending', { method: outcome.method, reason: outcome.detail });
      retryMs = Math.min(retryMs, Math.max(outcome.retryAfterMs, 100));
    } catch (err) {
      const e = err as CloudError;
      await hostEvent(ctx, 'ha.fence-failed', {
        method: driver.method,
        attempt,
        code: e.code ?? 'FENCE_ERROR',
        reason: `${e.message}; nothing is restarted until the fence succeeds (next try in ${retryMs / 1000} s)`,
      });
      ctx.deps.log.warn({ err, host: host.uuid, attempt }, 'host HA: the fence failed');
    }
    await ctx.progress(5, `fencing: attempt ${attempt} did not confirm, trying again`);
    await pause(ctx, retryMs);
  }
}

/** Records the fence; false when the host answered meanwhile (a Connected host is never marked fenced). */
async function markFenced(ctx: Ctx, method: string, detail: string): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    const row = await tx
      .updateTable('hosts')
      .set({ fencedAt: new Date(), updatedAt: new Date() })
      .where('uuid', '=', ctx.params.uuid)
      .where('fencedAt', 'is', null)
      .where('status', '=', 'Disconnected')
      .returning(['uuid', 'accountUuid'])
      .executeTakeFirst();
    if (row)
      batch.add({
        ...resourceEvent(hostFamily, row, 'ha.fenced', { method, detail }),
        jobUuid: ctx.job.uuid,
      });
    return row !== undefined;
  });
}

/** The VMs to restart elsewhere, and those that cannot be (volumes on the failed host's local storage). */
async function listVms(ctx: Ctx): Promise<void> {
  if (ctx.data.skipped) return;
  const vms = await ctx.db
    .selectFrom('vms')
    .select(['uuid', 'accountUuid', 'haLevel', 'state'])
    .where('hostUuid', '=', ctx.params.uuid)
    .where('state', 'in', [...LIVE])
    .where('haLevel', '=', 'restart-on-host-failure')
    .execute();
  const restart: string[] = [];
  for (const vm of vms) {
    const local = await ctx.db
      .selectFrom('volumes as v')
      .innerJoin('primaryStorages as p', 'p.uuid', 'v.primaryStorageUuid')
      .select(['v.uuid', 'p.name'])
      .where('v.vmUuid', '=', vm.uuid)
      .where('v.state', '<>', 'Deleted')
      .where('p.type', '=', 'local')
      .execute();
    if (local.length === 0) {
      restart.push(vm.uuid);
      continue;
    }
    const reason = `its volume(s) ${local.map((v) => v.uuid).join(', ')} are on local storage of the failed host: it stays Unknown until the host is back`;
    await hostEvent(ctx, 'ha.vm-not-recoverable', { vmUuid: vm.uuid, reason });
    await ctx.emit([
      {
        ...resourceEvent(vmFamily, vm, 'ha.not-recoverable', { hostUuid: ctx.params.uuid, reason }),
        jobUuid: ctx.job.uuid,
      },
    ]);
  }
  ctx.data.restart = restart;
}

/** Each listed VM leaves the fenced host: Stopped, capacity given back there, NICs on no host. */
async function releaseVms(ctx: Ctx): Promise<void> {
  for (const uuid of (ctx.data.restart as string[] | undefined) ?? []) {
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const row = await tx
        .updateTable('vms')
        .set({ state: 'Stopped', powerState: 'NoState', updatedAt: new Date() })
        .where('uuid', '=', uuid)
        .where('hostUuid', '=', ctx.params.uuid)
        .where('state', 'in', [...LIVE])
        .where('task', 'is', null)
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      if (!row) return; // released before a crash, or an operation took it
      // the candidate snapshot is not told: the fenced host is no placement candidate anyway
      await releaseHost(tx, uuid, 'host', ctx.params.uuid);
      await placeNics(tx, uuid, null);
      batch.add({
        ...resourceEvent(vmFamily, row, 'state.changed', {
          state: 'Stopped',
          powerState: 'NoState',
          reason: `its host ${ctx.params.uuid} was fenced; restarting elsewhere`,
        }),
        jobUuid: ctx.job.uuid,
      });
    });
  }
}

/** starts of one VM this chain submits at most (a start interrupted by a crash, no room once) */
const START_ATTEMPTS = 3;

type JobOutcome = { uuid: string; state: string; error: unknown };

/** Waits (without a running slot) for a job to end; its row at the end. */
async function ended(svc: ServiceContext, ctx: Ctx, jobUuid: string): Promise<JobOutcome | undefined> {
  const read = () =>
    ctx.db
      .selectFrom('jobs')
      .select(['uuid', 'state', 'error'])
      .where('uuid', '=', jobUuid)
      .executeTakeFirst();
  let row = await read();
  while (row && (row.state === 'Pending' || row.state === 'Running')) {
    const wait = () => svc.engine.waitFor(jobUuid, WAIT_SLICE_MS);
    await (ctx.idle ? ctx.idle(wait) : wait());
    row = await read();
  }
  return row;
}

/**
 * Starts one released VM elsewhere and waits for it. The starts carry this chain's request id,
 * so a resumed step first looks at what it submitted before a crash: a start still running is
 * waited for, one that succeeded counts, one that failed (or was rolled back by the crash) is
 * submitted again, up to START_ATTEMPTS starts in all.
 */
async function restartOne(svc: ServiceContext, ctx: Ctx, uuid: string): Promise<string | undefined> {
  const requestId = `host-ha-${ctx.job.uuid}-${uuid}`;
  const earlier = await ctx.db
    .selectFrom('jobs')
    .select('uuid')
    .where('requestId', '=', requestId)
    .where('resourceUuid', '=', uuid)
    .orderBy('createdAt')
    .execute();
  let last: JobOutcome | undefined;
  for (const job of earlier) last = await ended(svc, ctx, job.uuid);
  for (let attempt = earlier.length; ; attempt++) {
    if (last?.state === 'Succeeded') return undefined;
    const vm = await ctx.db
      .selectFrom('vms')
      .select(['uuid', 'accountUuid', 'state', 'task', 'hostUuid'])
      .where('uuid', '=', uuid)
      .executeTakeFirst();
    if (vm?.state !== 'Stopped' || vm.task !== null || vm.hostUuid !== null)
      return vm
        ? `it is ${vm.state}${vm.task ? ` (busy with ${vm.task})` : ''}: left as it is`
        : 'it is gone';
    if (attempt >= START_ATTEMPTS) {
      const error = last?.error as { code?: string; message?: string } | null | undefined;
      return `its start ${last?.state ?? 'never ran'} ${attempt} time(s): ${error?.code ?? ''} ${error?.message ?? ''}`.trim();
    }
    try {
      const job = await submitOperation(svc, { userUuid: null, requestId }, vm, 'start', {
        excludeHosts: [ctx.params.uuid],
      });
      last = await ended(svc, ctx, job.uuid);
    } catch (err) {
      return (err as Error).message;
    }
  }
}

async function restartVms(svc: ServiceContext, ctx: Ctx): Promise<void> {
  const restarted: string[] = [];
  const failed: string[] = [];
  const listed = (ctx.data.restart as string[] | undefined) ?? [];
  await Promise.all(
    listed.map(async (vmUuid) => {
      const why = await restartOne(svc, ctx, vmUuid);
      if (why === undefined) {
        const vm = await ctx.db
          .selectFrom('vms')
          .select('hostUuid')
          .where('uuid', '=', vmUuid)
          .executeTakeFirst();
        restarted.push(vmUuid);
        await hostEvent(ctx, 'ha.vm-restarted', { vmUuid, hostUuid: vm?.hostUuid ?? null });
      } else {
        failed.push(vmUuid);
        await hostEvent(ctx, 'ha.vm-restart-failed', { vmUuid, reason: why });
      }
    }),
  );
  ctx.data.restarted = restarted;
  ctx.data.failed = failed;
}

export function hostHaRecoverFlow(svc: ServiceContext): FlowDef<RecoverParams, FlowDeps> {
  return {
    kind: HOST_HA_RECOVER,
    recovery: 'resume',
    steps: [
      { name: 'fence', describe: 'fence the silent host', run: fence },
      { name: 'list-vms', describe: 'list its HA VMs', run: listVms },
      { name: 'release-vms', describe: 'take its HA VMs off the fenced host', run: releaseVms },
      {
        name: 'restart-vms',
        describe: 'start its HA VMs on other hosts',
        run: (ctx) => restartVms(svc, ctx),
      },
    ],
    async result(ctx) {
      return {
        host: await readRow(ctx.db, 'hosts', ctx.params.uuid),
        ...(ctx.data.skipped ? { skipped: ctx.data.skipped } : {}),
        restarted: ctx.data.restarted ?? [],
        failed: ctx.data.failed ?? [],
      };
    },
  };
}
