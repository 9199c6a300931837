/**
 * The lease clock, one pass over the leases this node owns (rendezvous ownership over `leases`:
 * each lease is scanned by exactly one live node). `now` is a parameter so tests can move time.
 * 1. notice: an Active lease ending within leaseNoticeSeconds is announced once
 *    (`lease.expiring`, to its holder's account);
 * 2. expiry: an ordinary VM's lease ends (the VM goes back to the pool: end.ts); an important
 *    VM's lease becomes Stopped with deleteAfter = now + leaseGraceSeconds and its VM is stopped
 *    (`lease.stopped`); a renewal in between brings it back;
 * 3. grace over: a Stopped lease past deleteAfter ends like an ordinary one;
 * 4. a Stopped lease whose VM still runs (the stop was lost in a crash) gets its stop again.
 */
import { sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import { resourceEvent } from '../../common.js';
import { submitOperation } from '../../compute/vm/operations.js';
import type { ServiceContext } from '../../service.js';
import { endLease } from './end.js';
import { syncAfterLeaseEnded } from './floating-ip.js';
import { leaseFamily } from './model.js';

const BATCH = 500;

export interface ScanResult {
  noticed: number;
  ended: number;
  stopped: number;
}

export async function scanLeases(
  ctx: ServiceContext,
  now = new Date(),
  allNodes = false,
): Promise<ScanResult> {
  const s = ctx.deps.settings;
  // tests pass allNodes to scan every lease whichever node owns it
  const mine = (alias: string) => (allNodes ? sql<boolean>`true` : ownedBy(alias, ctx.engine.nodeId));
  const result: ScanResult = { noticed: 0, ended: 0, stopped: 0 };

  const soon = new Date(now.getTime() + s.leaseNoticeSeconds * 1000);
  await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
    const noticed = await tx
      .updateTable('leases')
      .set({ notifiedAt: now })
      .where('state', '=', 'Active')
      .where('notifiedAt', 'is', null)
      .where('expiresAt', '<=', soon)
      .where('expiresAt', '>', now)
      .where(mine('leases'))
      .returning(['uuid', 'accountUuid', 'expiresAt', 'vmUuid'])
      .execute();
    for (const l of noticed)
      batch.add(resourceEvent(leaseFamily, l, 'expiring', { expiresAt: l.expiresAt, vmUuid: l.vmUuid }));
    result.noticed = noticed.length;
  });

  const due = await ctx.db
    .selectFrom('leases')
    .select(['uuid', 'accountUuid', 'importance', 'state', 'vmUuid'])
    .where((eb) =>
      eb.or([
        eb.and([eb('state', '=', 'Active'), eb('expiresAt', '<=', now)]),
        eb.and([eb('state', '=', 'Stopped'), eb('deleteAfter', '<=', now)]),
      ]),
    )
    .where(mine('leases'))
    .limit(BATCH)
    .execute();
  for (const lease of due) {
    if (lease.state === 'Active' && lease.importance === 'high') {
      const stopped = await ctx.events.inTransaction(ctx.db, async (tx, batch) => {
        const row = await tx
          .updateTable('leases')
          .set({
            state: 'Stopped',
            deleteAfter: new Date(now.getTime() + s.leaseGraceSeconds * 1000),
            updatedAt: now,
          })
          .where('uuid', '=', lease.uuid)
          .where('state', '=', 'Active')
          .returning(['uuid', 'accountUuid', 'deleteAfter', 'vmUuid'])
          .executeTakeFirst();
        if (row)
          batch.add(
            resourceEvent(leaseFamily, row, 'stopped', { deleteAfter: row.deleteAfter, vmUuid: row.vmUuid }),
          );
        return row !== undefined;
      });
      if (stopped) result.stopped++;
    } else {
      const ended = await ctx.events.inTransaction(ctx.db, (tx, batch) =>
        endLease(tx, batch, lease.uuid, 'expired', now),
      );
      if (ended) {
        result.ended++;
        await syncAfterLeaseEnded(ctx.db, ctx.deps, lease.uuid);
      }
    }
  }

  // a Stopped lease's VM must not run: (re)send the stop until it is so
  const running = await ctx.db
    .selectFrom('leases as l')
    .innerJoin('vms as v', 'v.uuid', 'l.vmUuid')
    .select(['v.uuid', 'v.accountUuid', 'v.state', 'v.task'])
    .where('l.state', '=', 'Stopped')
    .where('v.state', 'in', ['Running', 'Paused'])
    .where('v.task', 'is', null)
    .where(mine('l'))
    .execute();
  for (const vm of running) {
    try {
      await submitOperation(ctx, { userUuid: null, requestId: `lease-stop-${vm.uuid}` }, vm, 'stop', {
        force: false,
      });
    } catch (err) {
      ctx.deps.log.debug({ err, vm: vm.uuid }, 'lease VM not stopped this pass');
    }
  }
  return result;
}
