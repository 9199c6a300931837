/**
 * Ending a lease, whatever the reason (released by its holder, expired, its VM gone): in ONE
 * transaction the lease becomes Ended and its pool VM Discarding, so the VM is never both held
 * and going; the pool's stock pass then destroys and expunges it (which gives the holder's quota
 * back) and makes a fresh one; the lease's floating IP, if any, is released in the same transaction
 * (floating-ip.ts). Conditional on the lease still being live: ending twice is a no-op.
 */

import type { Tx } from '../../../db/transaction.js';
import type { EventBatch } from '../../../engine/events.js';
import { resourceEvent } from '../../common.js';
import { releaseFloatingIp } from './floating-ip.js';
import { leaseFamily } from './model.js';

export type EndReason = 'released' | 'expired' | 'vm-gone' | 'allocation-failed';

export async function endLease(
  tx: Tx,
  batch: EventBatch,
  leaseUuid: string,
  reason: EndReason,
  now = new Date(),
): Promise<boolean> {
  const ended = await tx
    .updateTable('leases')
    .set({ state: 'Ended', endedAt: now, endReason: reason, deleteAfter: null, updatedAt: now })
    .where('uuid', '=', leaseUuid)
    .where('state', 'in', ['Active', 'Stopped'])
    .returning(['uuid', 'accountUuid', 'vmUuid', 'name'])
    .executeTakeFirst();
  if (!ended) return false;
  await releaseFloatingIp(tx, batch, ended.uuid);
  if (ended.vmUuid)
    await tx
      .updateTable('poolVms')
      .set({ state: 'Discarding' })
      .where('vmUuid', '=', ended.vmUuid)
      .where('state', '=', 'Allocated')
      .execute();
  batch.add(
    resourceEvent(leaseFamily, ended, reason === 'released' ? 'released' : 'reclaimed', {
      reason,
      vmUuid: ended.vmUuid,
    }),
  );
  return true;
}
