/**
 * The warm stock of the pools this node owns (rendezvous ownership: one node per pool, so two
 * nodes never top up the same pool at once). One pass per pool:
 * 0. size: the cap and warm target in force follow demand (sizing.ts);
 * 1. settle: a Provisioning VM that runs becomes Ready; one that failed, or a Ready one that no
 *    longer runs, is Discarded;
 * 2. top up (Enabled pools only): create VMs until ready + provisioning reaches the warm target,
 *    never letting all the pool's rows (handed out and going included) exceed the cap (both as
 *    in force);
 * 3. trim: Ready VMs beyond the warm target are Discarded (claimed with SKIP LOCKED, so a
 *    hand-out in flight keeps the one it took);
 * 4. discard: each Discarding VM is destroyed, then expunged (its row goes with it). Each step is
 *    a job the pass submits and does not wait for; the next pass takes the VM one step further,
 *    so a crash anywhere only delays it.
 */
import { sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import { randomHex } from '../../../kernel/ids.js';
import { admitPoolVmCreate } from '../../compute/vm/admission.js';
import { submitOperation } from '../../compute/vm/operations.js';
import type { ServiceContext } from '../../service.js';
import { recordBootstrap } from '../lease/login.js';
import { systemCallerFor } from '../system-caller.js';
import type { PoolFacts } from './model.js';
import { adaptPoolSize, effectiveSize, type PoolSizing, SIZING_COLUMNS } from './sizing.js';

type PoolRow = PoolSizing &
  Pick<
    PoolFacts,
    | 'uuid'
    | 'name'
    | 'accountUuid'
    | 'state'
    | 'imageUuid'
    | 'instanceOfferingUuid'
    | 'l3NetworkUuids'
    | 'securityGroupUuids'
    | 'warmTarget'
    | 'cap'
  >;

const POOL_COLUMNS = [
  'uuid',
  'name',
  'accountUuid',
  'state',
  'imageUuid',
  'instanceOfferingUuid',
  'l3NetworkUuids',
  'securityGroupUuids',
  'warmTarget',
  'cap',
  ...SIZING_COLUMNS,
] as const;

export async function stockPass(ctx: ServiceContext, now = new Date()): Promise<void> {
  const pools = await ctx.db
    .selectFrom('pools')
    .select(POOL_COLUMNS)
    .where(ownedBy('pools', ctx.engine.nodeId))
    .execute();
  for (const pool of pools) {
    try {
      await tendPool(ctx, pool as unknown as PoolRow, now);
    } catch (err) {
      ctx.deps.log.warn({ err, pool: pool.uuid }, 'pool stock pass failed for one pool');
    }
  }
}

/**
 * One pool's pass (tests call it directly for a pool whatever node owns it, with a `now` of their
 * choosing): the sizing decision first (sizing.ts), then the stock against the cap and warm
 * target in force.
 */
export async function tendPool(ctx: ServiceContext, pool: PoolRow, now = new Date()): Promise<void> {
  const size = effectiveSize(await adaptPoolSize(ctx, pool, now));
  await settle(ctx, pool.uuid);
  const counts = await countByState(ctx, pool.uuid);
  const total = counts.Provisioning + counts.Ready + counts.Allocated + counts.Discarding;
  if (pool.state === 'Enabled') {
    const wanted = Math.min(size.warmTarget - counts.Ready - counts.Provisioning, size.cap - total);
    if (wanted > 0) await topUp(ctx, pool, wanted);
  }
  if (counts.Ready > size.warmTarget) await trim(ctx, pool.uuid, counts.Ready - size.warmTarget);
  await discard(ctx, pool.uuid);
}

/** The pool's row as the pass reads it (tests tend one pool on a clock they move). */
export async function loadPoolForStock(ctx: ServiceContext, poolUuid: string): Promise<PoolRow | undefined> {
  const row = await ctx.db
    .selectFrom('pools')
    .select(POOL_COLUMNS)
    .where('uuid', '=', poolUuid)
    .executeTakeFirst();
  return row as unknown as PoolRow | undefined;
}

async function countByState(ctx: ServiceContext, poolUuid: string) {
  const rows = await ctx.db
    .selectFrom('poolVms')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .where('poolUuid', '=', poolUuid)
    .groupBy('state')
    .execute();
  const counts = { Provisioning: 0, Ready: 0, Allocated: 0, Discarding: 0 };
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

async function settle(ctx: ServiceContext, poolUuid: string): Promise<void> {
  await sql`
    update pool_vms pv set state = 'Ready', ready_at = now()
    from vms v
    where v.uuid = pv.vm_uuid and pv.pool_uuid = ${poolUuid} and pv.state = 'Provisioning'
      and v.state = 'Running' and v.task is null`.execute(ctx.db);
  // a create that failed leaves no VM (its rollback removed it, and the row with it); one that
  // ended in another state, or a ready VM that stopped running, is no use to anyone
  await sql`
    update pool_vms pv set state = 'Discarding'
    from vms v
    where v.uuid = pv.vm_uuid and pv.pool_uuid = ${poolUuid} and v.task is null
      and ((pv.state = 'Provisioning' and v.state not in ('Creating', 'Starting', 'Running'))
        or (pv.state = 'Ready' and v.state <> 'Running'))`.execute(ctx.db);
}

async function topUp(ctx: ServiceContext, pool: PoolRow, wanted: number): Promise<void> {
  const caller = await systemCallerFor(ctx.db, pool.accountUuid, `pool-stock-${pool.uuid}`);
  for (let i = 0; i < wanted; i++) {
    await admitPoolVmCreate(
      ctx,
      caller,
      {
        name: `${pool.name}-${randomHex(3)}`,
        description: `warm stock of pool ${pool.name}`,
        imageUuid: pool.imageUuid,
        instanceOfferingUuid: pool.instanceOfferingUuid,
        l3NetworkUuids: pool.l3NetworkUuids,
        ...(pool.securityGroupUuids.length > 0 ? { securityGroupUuids: pool.securityGroupUuids } : {}),
      },
      async (tx, vmUuid) => {
        await tx
          .insertInto('poolVms')
          .values({ vmUuid, poolUuid: pool.uuid, state: 'Provisioning' })
          .execute();
        await recordBootstrap(tx, pool.uuid, vmUuid);
      },
    );
  }
}

async function trim(ctx: ServiceContext, poolUuid: string, excess: number): Promise<void> {
  await sql`
    update pool_vms set state = 'Discarding'
    where vm_uuid in (
      select vm_uuid from pool_vms where pool_uuid = ${poolUuid} and state = 'Ready'
      order by ready_at desc limit ${excess} for update skip locked)`.execute(ctx.db);
}

async function discard(ctx: ServiceContext, poolUuid: string): Promise<void> {
  const going = await ctx.db
    .selectFrom('poolVms as pv')
    .innerJoin('vms as v', 'v.uuid', 'pv.vmUuid')
    .select(['v.uuid', 'v.accountUuid', 'v.state', 'v.task'])
    .where('pv.poolUuid', '=', poolUuid)
    .where('pv.state', '=', 'Discarding')
    .where('v.task', 'is', null)
    .execute();
  for (const vm of going) {
    const op = vm.state === 'Destroyed' ? 'expunge' : 'destroy';
    try {
      await submitOperation(ctx, { userUuid: null, requestId: `pool-discard-${vm.uuid}` }, vm, op);
    } catch (err) {
      // a VM another operation just took is tried again on the next pass
      ctx.deps.log.debug({ err, vm: vm.uuid, op }, 'pool VM not discarded this pass');
    }
  }
}
