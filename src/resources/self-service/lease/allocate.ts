/**
 * `POST /v1/pools/{uuid}/actions/allocate`: a Ready VM for the caller, on a lease, in the
 * admitting transaction when the pool has one (the job then only reports it). When it has none,
 * the pool's policy decides: `fail` refuses at once (POOL_EMPTY, retryable); `wait` admits a
 * Pending lease whose job waits, outside the node's running slots, for the stock pass to make
 * a VM ready, up to the pool's waitSeconds from the request, then fails with POOL_EMPTY (the
 * lease ends; nothing else changed).
 * The holder's limit is counted under a transaction-scoped advisory lock on (pool, user): one
 * user's concurrent requests queue on it, different users never do.
 */
import { sql } from 'kysely';
import type { CloudEvent } from '../../../engine/events.js';
import type { FlowDef } from '../../../engine/flow.js';
import { attachSecrets } from '../../../engine/job-secrets.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, conflict, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { loadVisible, queueKey, resourceEvent } from '../../common.js';
import { quotaErrorAtCommit } from '../../identity/quota/at-commit.js';
import { type QuotaUsage, reserveQuota } from '../../identity/quota/quota.js';
import type { FlowDeps, ServiceContext } from '../../service.js';
import { poolSchema } from '../pool/model.js';
import { recordMiss } from '../pool/sizing.js';
import { claimReadyVm } from './claim.js';
import { endLease } from './end.js';
import { attachFloatingIp, syncAfterLeaseEnded } from './floating-ip.js';
import { handOutReadyVm } from './hand-out.js';
import { handOutBatcher } from './hand-out-batch.js';
import { deliverLogin, loginOf } from './login.js';
import { leaseFamily, leaseWithVm } from './model.js';
import type { Login } from './user-data.js';

interface AllocateParams {
  poolUuid: string;
  leaseSeconds: number;
  holderAccountUuid: string;
  holderIsAdmin: boolean;
  /** epoch ms: a Pending lease's job gives up then (the request's time + the pool's waitSeconds) */
  waitUntil: number;
  /** the login to deliver (the password only as its hash): login.ts */
  login?: Login;
}

const POLL_MS = 250;

const poolEmpty = (poolName: string) =>
  new CloudError('Conflict', 'POOL_EMPTY', `pool ${poolName} has no ready VM; try again shortly`, {
    retryable: true,
    details: { pool: poolName },
  });

export async function admitAllocate(
  ctx: ServiceContext,
  caller: Caller,
  poolUuid: string,
  body: Record<string, unknown>,
): Promise<JobRow> {
  const pool = await loadVisible(ctx, poolSchema, poolUuid, caller);
  if (pool.state !== 'Enabled')
    throw conflict('POOL_DISABLED', `pool ${pool.name} is Disabled: it hands out no VMs`, {
      pool: pool.uuid,
    });
  const maxLease = pool.maxLeaseSeconds as number;
  const leaseSeconds = (body.leaseSeconds as number | undefined) ?? (pool.defaultLeaseSeconds as number);
  if (leaseSeconds > maxLease)
    throw invalid(
      [{ field: 'leaseSeconds', problem: `at most ${maxLease} s (the pool's longest lease)` }],
      'LEASE_TOO_LONG',
    );
  const { login, method, password } = loginOf(body, pool.loginUser as string);
  // a floating IP or a login is made after the hand-out, by the job: it then runs instead of being recorded as done
  const handOver = login !== undefined || !!pool.floatingL3NetworkUuid;
  const lease = {
    uuid: newId(),
    name: pool.name as string,
    description: (body.description as string | undefined) ?? null,
    accountUuid: caller.accountUuid,
    userUuid: caller.userUuid,
    poolUuid,
    importance: (body.importance as 'normal' | 'high' | undefined) ?? 'normal',
    expiresAt: new Date(Date.now() + leaseSeconds * 1000),
  };
  const params: AllocateParams = {
    poolUuid,
    leaseSeconds,
    holderAccountUuid: caller.accountUuid,
    holderIsAdmin: caller.isAdmin,
    waitUntil: Date.now() + (pool.waitSeconds as number) * 1000,
    ...(login ? { login } : {}),
  };
  const holder = { uuid: caller.accountUuid, isAdmin: caller.isAdmin };
  let charged: QuotaUsage | undefined;
  const spec = {
    kind: 'lease.allocate',
    params: params as unknown as Record<string, unknown>,
    accountUuid: caller.accountUuid,
    userUuid: caller.userUuid,
    resourceKind: leaseFamily.kind,
    resourceUuid: lease.uuid,
    queueKey: queueKey(leaseFamily, lease.uuid),
    requestId: caller.requestId,
    done: ['admit'],
  };
  const handOut = {
    ...lease,
    loginMethod: login ? (method ?? null) : null,
    loginUser: login ? login.user : null,
    loginState: login ? ('Delivering' as const) : null,
  };
  const limit = pool.perUserLimit as number;
  const overLimit = (held: number) =>
    conflict(
      'POOL_USER_LIMIT',
      `you hold ${held} VMs of pool ${pool.name}, its limit per user; release one first`,
      {
        pool: pool.uuid,
        held,
        limit,
      },
    );
  // the holder's live leases of this pool, counted in a statement that starts after the advisory
  // lock on (pool, user) was taken (hand-out.ts): it sees every lease that user's other requests committed
  const heldLeases = sql<number>`(select count(*)::int from leases
    where pool_uuid = ${poolUuid} and user_uuid = ${caller.userUuid} and state <> 'Ended')`;
  if (!handOver) {
    // the fast path, batched with the concurrent allocations of this pool (hand-out-batch.ts);
    // not served there (no VM, over the limit, the batch rolled back): the one-request path below
    const served = await handOutBatcher(ctx, poolUuid).handOut({
      lease,
      poolName: pool.name as string,
      perUserLimit: pool.perUserLimit as number,
      charge: !holder.isAdmin,
      spec,
    });
    if (served) return served;
  }
  let published: CloudEvent[] = [];
  const { job, queued } = await ctx.events
    .inTransaction(ctx.db, async (tx, batch) => {
      // the fast path: one statement hands out a Ready VM (or writes nothing), one more records
      // the finished job with its events and counts the holder's leases, then the COMMIT
      const out = await handOutReadyVm(tx, handOut, !holder.isAdmin);
      if (out) {
        charged = out.usage;
        const created = resourceEvent(leaseFamily, lease, 'created', {
          pool: pool.name,
          vmUuid: out.vm.uuid,
        });
        if (!handOver) {
          const r = await ctx.engine.recordFinishedWith(tx, spec, out.answer, [created], heldLeases);
          // the count includes this lease
          if ((r.also ?? 0) > limit) throw overLimit((r.also ?? 0) - 1);
          published = r.stored;
          return { job: r.job, queued: false };
        }
        // the login or floating IP is delivered by the job; the quota is charged now all the same
        const held = await sql<{ n: number }>`select ${heldLeases} as n`.execute(tx);
        if ((held.rows[0]?.n ?? 0) > limit) throw overLimit((held.rows[0]?.n ?? 0) - 1);
        batch.add(created);
        return {
          job: await ctx.engine.submit(tx, { ...spec, done: ['admit', 'wait-for-vm'] }, batch),
          queued: true,
        };
      }
      // no VM ready: the lock (again: it may not have been taken when nothing was claimed), the
      // count, then the pool's policy
      await sql`select pg_advisory_xact_lock(hashtext(${poolUuid}), hashtext(${caller.userUuid}))`.execute(
        tx,
      );
      const held = (await sql<{ n: number }>`select ${heldLeases} as n`.execute(tx)).rows[0]?.n ?? 0;
      if (held >= limit) throw overLimit(held);
      if (pool.emptyPolicy !== 'wait') throw poolEmpty(pool.name as string);
      await tx
        .insertInto('leases')
        .values({ ...handOut, vmUuid: null, ips: JSON.stringify([]), state: 'Pending' })
        .execute();
      batch.add(resourceEvent(leaseFamily, lease, 'pending', { pool: pool.name }));
      return { job: await ctx.engine.submit(tx, spec, batch), queued: true };
    })
    .catch(async (err: unknown) => {
      // a refusal for want of a VM is demand all the same: the pool's sizing counts it
      if (err instanceof CloudError && err.code === 'POOL_EMPTY')
        await recordMiss(ctx.db, poolUuid).catch(() => {});
      throw (charged && (await quotaErrorAtCommit(ctx.db, err, holder.uuid, charged))) ?? err;
    });
  ctx.events.publish(published);
  if (queued) ctx.engine.start(job.uuid, job.queueKey);
  return password ? attachSecrets(job, { password }) : job;
}

/** Claims a VM for a Pending lease, or does nothing (lease already served, or none ready). */
async function serve(ctx: ServiceContext, leaseUuid: string, p: AllocateParams): Promise<boolean> {
  return ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    const lease = await tx
      .selectFrom('leases')
      .select(['uuid', 'accountUuid', 'state', 'vmUuid'])
      .where('uuid', '=', leaseUuid)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (lease.state !== 'Pending') return true;
    const holder = { uuid: p.holderAccountUuid, isAdmin: p.holderIsAdmin };
    const vm = await claimReadyVm(tx, p.poolUuid, holder);
    if (!vm) return false;
    await tx
      .updateTable('leases')
      .set({
        state: 'Active',
        vmUuid: vm.uuid,
        name: vm.name,
        ips: JSON.stringify(vm.ips),
        expiresAt: new Date(Date.now() + p.leaseSeconds * 1000),
        updatedAt: new Date(),
      })
      .where('uuid', '=', leaseUuid)
      .execute();
    batch.add(resourceEvent(leaseFamily, lease, 'created', { vmUuid: vm.uuid }));
    await reserveQuota(tx, holder, vm.usage);
    return true;
  });
}

export function leaseAllocateFlow(ctx: ServiceContext): FlowDef<AllocateParams, FlowDeps> {
  return {
    kind: 'lease.allocate',
    recovery: 'resume',
    steps: [
      {
        name: 'admit',
        describe: 'claim a ready VM',
        async run() {},
        async rollback(c) {
          // only a lease that never got a VM can be here: it ends, nothing else to give back
          await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
            const ended = await tx
              .updateTable('leases')
              .set({ state: 'Ended', endedAt: new Date(), endReason: 'no-vm', updatedAt: new Date() })
              .where('uuid', '=', c.job.resourceUuid!)
              .where('state', '=', 'Pending')
              .returning(['uuid', 'accountUuid'])
              .executeTakeFirst();
            if (ended) batch.add(resourceEvent(leaseFamily, ended, 'ended', { reason: 'no-vm' }));
          });
        },
      },
      {
        name: 'wait-for-vm',
        describe: 'wait for a ready VM',
        async run(c) {
          const leaseUuid = c.job.resourceUuid!;
          const deadline = c.params.waitUntil;
          const wait = async () => {
            while (!(await serve(ctx, leaseUuid, c.params))) {
              if (Date.now() >= deadline) {
                const pool = await ctx.db
                  .selectFrom('pools')
                  .select('name')
                  .where('uuid', '=', c.params.poolUuid)
                  .executeTakeFirst();
                throw poolEmpty(pool?.name ?? c.params.poolUuid);
              }
              await new Promise((r) => setTimeout(r, POLL_MS));
            }
          };
          if (await serve(ctx, leaseUuid, c.params)) return;
          await c.progress(50, 'waiting for the pool to make a VM ready');
          await (c.idle ? c.idle(wait) : wait());
        },
      },
      {
        name: 'hand-over',
        describe: 'make the floating IP',
        async run(c) {
          await attachFloatingIp(ctx, c.job.resourceUuid!, c.job.uuid);
        },
        // this step or the login failed: the hand-out is undone (the lease ends, its VM and
        // floating IP go back), so no one holds a VM without the address or login they asked for
        async rollback(c) {
          await ctx.events.inTransaction(ctx.db, (tx, batch) =>
            endLease(tx, batch, c.job.resourceUuid!, 'allocation-failed'),
          );
          await syncAfterLeaseEnded(ctx.db, ctx.deps, c.job.resourceUuid!);
        },
      },
      {
        name: 'deliver-login',
        describe: 'restart the VM with its login',
        async run(c) {
          const deliver = () => deliverLogin(ctx, c.job.resourceUuid!, c.params.login, c.job.uuid);
          // waits for the VM's own stop and start jobs: without its running slot
          await (c.idle ? c.idle(deliver) : deliver());
        },
      },
    ],
    result: (c) => leaseWithVm(ctx.db, c.job.resourceUuid!),
  };
}
