/**
 * Reaping soft-deleted resources (ZStack's Delay policy): a resource Deleted longer than
 * `settings.retentionSeconds` gets an ordinary `<singular>.expunge` job in its own queue, so an
 * expunge is journaled and retried like any other; one whose expunge is already pending is left
 * to that job. With several nodes each resource is reaped by the node that owns it (rendezvous,
 * cluster/ownership.ts); a second expunge of the same resource would find it gone anyway.
 */
import { ownedBy } from '../cluster/ownership.js';
import type { Settings } from '../kernel/settings.js';
import type { ServiceContext } from './service.js';

/** how many resources one pass submits at most (the next pass takes the rest) */
const BATCH = 200;

export interface SoftDeleted {
  table: 'images' | 'volumes';
  /** queue and job noun: `image` → `image.expunge` in `image:<uuid>` */
  singular: string;
}

/** Submits an expunge job for every resource Deleted longer than the retention; returns how many. */
export async function reapSoftDeleted(
  ctx: Pick<ServiceContext, 'db' | 'engine'>,
  target: SoftDeleted,
  settings: Pick<Settings, 'retentionSeconds'>,
  now: Date = new Date(),
): Promise<number> {
  const cutoff = new Date(now.getTime() - settings.retentionSeconds * 1000);
  const kind = `${target.singular}.expunge`;
  const expired = await ctx.db
    // typed as volumes: the columns used here (uuid, accountUuid, state, deletedAt) mean the same in both tables
    .selectFrom(`${target.table} as r` as 'volumes as r')
    .select(['r.uuid', 'r.accountUuid'])
    .where('r.state', '=', 'Deleted')
    .where('r.deletedAt', '<=', cutoff)
    .where(ownedBy('r', ctx.engine.nodeId))
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('jobs as j')
            .select('j.uuid')
            .whereRef('j.resourceUuid', '=', 'r.uuid')
            .where('j.kind', '=', kind)
            .where('j.state', 'in', ['Pending', 'Running']),
        ),
      ),
    )
    .orderBy('r.deletedAt')
    .limit(BATCH)
    .execute();
  for (const r of expired) {
    await ctx.engine.submitAndStart({
      kind,
      params: { uuid: r.uuid, reason: 'retention expired' },
      accountUuid: r.accountUuid,
      resourceKind: target.table,
      resourceUuid: r.uuid,
      queueKey: `${target.singular}:${r.uuid}`,
    });
  }
  return expired.length;
}
