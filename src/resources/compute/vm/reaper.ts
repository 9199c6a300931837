/**
 * The reaper: Destroyed VMs older than settings.retentionSeconds are expunged, by the same
 * `vm.expunge` chain a user runs, submitted on behalf of the VM's account. Idempotent across
 * nodes: the admission is the conditional UPDATE every operation uses, so a VM another node
 * (or a user) is already expunging is skipped.
 */
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { ownedBy } from '../../../cluster/ownership.js';
import { CloudError } from '../../../kernel/errors.js';
import type { Settings } from '../../../kernel/settings.js';
import type { ServiceContext } from '../../service.js';
import { submitOperation } from './operations.js';

/** VMs expunged per pass at most (the next pass takes the rest) */
const BATCH = 200;

export async function reapDestroyedVms(
  ctx: ServiceContext,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const expired = await ctx.db
    .selectFrom('vms')
    .select(['uuid', 'accountUuid', 'state', 'task'])
    .where('state', '=', 'Destroyed')
    .where('task', 'is', null)
    .where('destroyedAt', '<', sql<Date>`now() - make_interval(secs => ${settings.retentionSeconds})`)
    // with several nodes, each VM by the node that owns it (cluster/ownership.ts)
    .where(ownedBy('vms', ctx.engine.nodeId))
    .orderBy('destroyedAt')
    .limit(BATCH)
    .execute();
  let submitted = 0;
  for (const vm of expired) {
    try {
      await submitOperation(ctx, { userUuid: null, requestId: `reaper-${vm.uuid}` }, vm, 'expunge');
      submitted++;
    } catch (err) {
      // someone else is on it (VM_BUSY) or it was recovered meanwhile (VM_INVALID_STATE)
      if (!(err instanceof CloudError) || err.reason !== 'Conflict')
        log.warn({ err, vm: vm.uuid }, 'reaper: expunge not submitted');
    }
  }
  if (submitted > 0) log.info({ submitted }, 'reaper: expunging destroyed vms past their retention');
  return submitted;
}
