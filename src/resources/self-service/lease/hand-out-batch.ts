/**
 * Group commit for the pool hand-out (docs/self-service.md, "Allocation"): the allocations of one
 * pool that arrive while a batch is in flight are served together by the NEXT batch, ONE
 * transaction of a fixed number of statements whatever its size — the advisory locks, one
 * set-based hand-out (this file), one insert of all the finished jobs and their events
 * (engine/job-record.ts), the COMMIT. 100 callers then no longer queue one by one for the node's
 * few database connections, each paying its round trips and its commit.
 *
 * Every request keeps its own guarantees:
 * - the (pool, user) advisory locks of the whole batch are taken first, in one order (the sorted
 *   keys), so batches on different nodes never deadlock; the hand-out statement starts after
 *   them, so its count of each user's live leases sees every lease committed before;
 * - per-user limit: a request is served only if that user's live leases + its rank among the
 *   same user's requests of the batch stay within the pool's limit (they count each other);
 * - VMs are claimed with `FOR UPDATE SKIP LOCKED`, one per served request (never one twice);
 * - the quota is charged at the commit, one `quota_charges` row per request, as the one-request
 *   path does (hand-out.ts).
 * A request the batch did not serve (no VM left, over its limit) is answered `undefined`, and so is
 * every request of a batch that rolled back (a quota passed at the commit, any error): the caller
 * then takes the one-request path (allocate.ts), which gives it its own error — or waits, for a
 * pool whose policy is `wait` — exactly as before. A crash mid-batch leaves nothing: it is one
 * transaction.
 */
import { sql } from 'kysely';
import type { CloudEvent } from '../../../engine/events.js';
import type { JobRow, JobSpec } from '../../../engine/jobs.js';
import { resourceEvent } from '../../common.js';
import { QUOTA_DEFAULTS } from '../../identity/quota/quota.js';
import type { ServiceContext } from '../../service.js';
import { type HandOutRow, handOutAnswer } from './hand-out.js';
import { leaseFamily } from './model.js';

/** One allocation with no login and no floating IP (those are handed over by a job, allocate.ts). */
export interface BatchedHandOut {
  lease: {
    uuid: string;
    description: string | null;
    accountUuid: string;
    userUuid: string;
    importance: 'normal' | 'high';
    expiresAt: Date;
  };
  poolName: string;
  perUserLimit: number;
  /** false for an admin holder: no quota charged */
  charge: boolean;
  spec: JobSpec;
}

interface Waiting {
  request: BatchedHandOut;
  resolve: (job: JobRow | undefined) => void;
}

/** A bound on one statement's arrays; more waiting requests go in the next batch. */
const MAX_BATCH = 200;

export class HandOutBatcher {
  private waiting: Waiting[] = [];
  private running = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly poolUuid: string,
  ) {}

  /** The finished job of the request's hand-out, or `undefined`: not served here, take the one-request path. */
  handOut(request: BatchedHandOut): Promise<JobRow | undefined> {
    return new Promise((resolve) => {
      this.waiting.push({ request, resolve });
      if (!this.running) void this.drain();
    });
  }

  /** No timer: a lone request goes at once; the next batch is whatever queued while one ran. */
  private async drain() {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      const served = await this.serve(batch.map((w) => w.request)).catch((err: unknown) => {
        // each request then takes the one-request path, which answers it with its own error
        this.ctx.deps.log.debug(
          { err, pool: this.poolUuid, size: batch.length },
          'hand-out batch rolled back',
        );
        return new Map<string, JobRow>();
      });
      for (const w of batch) w.resolve(served.get(w.request.lease.uuid));
    }
    this.running = false;
  }

  /** ONE transaction: the locks, the hand-out, the jobs; the events are published after the commit. */
  private async serve(requests: BatchedHandOut[]): Promise<Map<string, JobRow>> {
    let published: CloudEvent[] = [];
    const served = await this.ctx.db.transaction().execute(async (tx) => {
      await sql`select count(pg_advisory_xact_lock(hashtext(${this.poolUuid}), k))
        from (select distinct hashtext(u) as k from unnest(${requests.map((r) => r.lease.userUuid)}::text[]) u
              order by 1) keys`.execute(tx);
      const rows = await this.handOutStatement(requests).execute(tx);
      const byLease = new Map(requests.map((r) => [r.lease.uuid, r]));
      const done = rows.rows.map((row) => {
        const request = byLease.get(row.uuid as string) as BatchedHandOut;
        const out = handOutAnswer(row);
        const created = resourceEvent(leaseFamily, request.lease, 'created', {
          pool: request.poolName,
          vmUuid: out.vm.uuid,
        });
        return { spec: request.spec, result: out.answer, events: [created] };
      });
      const jobs = await this.ctx.engine.recordFinishedMany(tx, done);
      published = jobs.flatMap((j) => j.stored);
      return new Map(jobs.map((j) => [j.job.resourceUuid as string, j.job]));
    });
    this.ctx.events.publish(published);
    return served;
  }

  /**
   * The set-based hand-out.ts: `req` is the batch (one row per request, in arrival order);
   * `eligible` those within their user's limit, numbered; `claim` as many Ready VMs, numbered
   * too; `pick` pairs them by number. The rest is hand-out.ts's statement for every pair.
   */
  private handOutStatement(requests: BatchedHandOut[]) {
    const col = <T>(f: (r: BatchedHandOut) => T) => requests.map(f);
    return sql<HandOutRow>`
      with req as (
        select * from unnest(${col((r) => r.lease.uuid)}::uuid[], ${col((r) => r.lease.description)}::text[],
          ${col((r) => r.lease.accountUuid)}::uuid[], ${col((r) => r.lease.userUuid)}::uuid[],
          ${col((r) => r.lease.importance)}::text[], ${col((r) => r.lease.expiresAt.toISOString())}::timestamptz[],
          ${col((r) => r.charge)}::boolean[], ${col((r) => r.perUserLimit)}::int[])
          with ordinality as r(lease_uuid, description, account_uuid, user_uuid, importance, expires_at, charge,
            per_user_limit, idx)
      ),
      held as (
        select user_uuid, count(*)::int as n from leases
        where pool_uuid = ${this.poolUuid} and state <> 'Ended' and user_uuid in (select user_uuid from req)
        group by user_uuid
      ),
      eligible as (
        select r.*, row_number() over (order by r.idx) as slot
        from (select req.*, row_number() over (partition by req.user_uuid order by req.idx) as nth from req) r
          left join held h on h.user_uuid = r.user_uuid
        where coalesce(h.n, 0) + r.nth <= r.per_user_limit
      ),
      claim as materialized (
        select pv.vm_uuid, v.root_volume_uuid, pv.ready_at
        from pool_vms pv join vms v on v.uuid = pv.vm_uuid
        where pv.pool_uuid = ${this.poolUuid} and pv.state = 'Ready' and v.state = 'Running' and v.task is null
        order by pv.ready_at limit (select count(*) from eligible)
        for update of pv, v skip locked
      ),
      pick as materialized (
        select e.*, c.vm_uuid, c.root_volume_uuid
        from (select claim.*, row_number() over (order by claim.ready_at, claim.vm_uuid) as slot from claim) c
          join eligible e on e.slot = c.slot
      ),
      allocated as (
        update pool_vms set state = 'Allocated' from pick where pool_vms.vm_uuid = pick.vm_uuid
        returning pool_vms.vm_uuid
      ),
      vm as (
        update vms set account_uuid = pick.account_uuid, updated_at = now()
        from pick where vms.uuid = pick.vm_uuid
        returning vms.uuid, vms.name, vms.state, vms.host_uuid, vms.cpu, vms.memory
      ),
      vols as (
        update volumes set account_uuid = pick.account_uuid, updated_at = now()
        from pick where volumes.vm_uuid = pick.vm_uuid
        returning volumes.uuid, volumes.size
      ),
      nics as (
        update vm_nics set account_uuid = pick.account_uuid, updated_at = now()
        from pick where vm_nics.vm_uuid = pick.vm_uuid
        returning vm_nics.vm_uuid, vm_nics.ip, vm_nics.l3_network_uuid, vm_nics.is_default, vm_nics.device_id
      ),
      addr as (
        select vm.uuid as vm_uuid,
          coalesce(jsonb_agg(nics.ip order by nics.device_id) filter (where nics.ip is not null), '[]') as ips,
          coalesce(jsonb_agg(jsonb_build_object('ip', nics.ip, 'l3NetworkUuid', nics.l3_network_uuid,
            'isDefault', nics.is_default) order by nics.device_id) filter (where nics.vm_uuid is not null), '[]') as nics
        from vm left join nics on nics.vm_uuid = vm.uuid
        group by vm.uuid
      ),
      usage as (
        select pick.vm_uuid, jsonb_strip_nulls(jsonb_build_object('vm.num', 1, 'vm.cpu', vm.cpu, 'vm.memory', vm.memory,
          'volume.capacity', nullif((select coalesce(sum(vols.size), 0) from vols
                                     where vols.uuid = pick.root_volume_uuid), 0))) as u
        from pick join vm on vm.uuid = pick.vm_uuid
      ),
      lease as (
        insert into leases (uuid, name, description, account_uuid, user_uuid, pool_uuid, importance, expires_at,
          vm_uuid, ips, state)
        select pick.lease_uuid, vm.name, pick.description, pick.account_uuid, pick.user_uuid, ${this.poolUuid},
          pick.importance, pick.expires_at, vm.uuid, addr.ips, 'Active'
        from pick join vm on vm.uuid = pick.vm_uuid join addr on addr.vm_uuid = vm.uuid
        returning *
      ),
      charge as (
        insert into quota_charges (account_uuid, usage, defaults)
        select pick.account_uuid, usage.u,
          (select jsonb_object_agg(k, ${JSON.stringify(QUOTA_DEFAULTS)}::jsonb -> k) from jsonb_object_keys(usage.u) k)
        from pick join usage on usage.vm_uuid = pick.vm_uuid
        where pick.charge
      )
      select lease.*, vm.name as vm_name, vm.state as vm_state, vm.host_uuid as vm_host_uuid, vm.cpu as vm_cpu,
        vm.memory as vm_memory, addr.nics as vm_nics, usage.u as charged_usage
      from lease join vm on vm.uuid = lease.vm_uuid join addr on addr.vm_uuid = vm.uuid
        join usage on usage.vm_uuid = vm.uuid`;
  }
}

const batchers = new WeakMap<ServiceContext, Map<string, HandOutBatcher>>();

/** The node's batcher for a pool (one batch in flight per pool and node). */
export function handOutBatcher(ctx: ServiceContext, poolUuid: string): HandOutBatcher {
  const byPool = batchers.get(ctx) ?? new Map<string, HandOutBatcher>();
  batchers.set(ctx, byPool);
  const batcher = byPool.get(poolUuid) ?? new HandOutBatcher(ctx, poolUuid);
  byPool.set(poolUuid, batcher);
  return batcher;
}
