/**
 * The volume reaper: a soft-deleted volume is expunged `settings.retentionSeconds` after its
 * delete (ZStack's Delay policy). Each expired volume gets an ordinary `volume.expunge` job in
 * its own queue, so an expunge is journaled and retried like any other; a volume whose expunge
 * is already pending is left to that job. Any node may run it: a second expunge of the same
 * volume finds it gone and succeeds.
 */
import type { Settings } from '../../kernel/settings.js';
import type { ServiceContext } from '../service.js';

/** how many volumes one pass submits at most (the next pass takes the rest) */
const BATCH = 200;

/** Submits an expunge job for every volume Deleted longer than the retention; returns how many. */
export async function reapExpiredVolumes(
  ctx: ServiceContext,
  settings: Pick<Settings, 'retentionSeconds'>,
  now: Date = new Date(),
): Promise<number> {
  const cutoff = new Date(now.getTime() - settings.retentionSeconds * 1000);
  const expired = await ctx.db
    .selectFrom('volumes as v')
    .select(['v.uuid', 'v.accountUuid'])
    .where('v.state', '=', 'Deleted')
    .where('v.deletedAt', '<=', cutoff)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('jobs as j')
            .select('j.uuid')
            .whereRef('j.resourceUuid', '=', 'v.uuid')
            .where('j.kind', '=', 'volume.expunge')
            .where('j.state', 'in', ['Pending', 'Running']),
        ),
      ),
    )
    .orderBy('v.deletedAt')
    .limit(BATCH)
    .execute();
  for (const v of expired) {
    await ctx.engine.submitAndStart({
      kind: 'volume.expunge',
      params: { uuid: v.uuid, reason: 'retention expired' },
      accountUuid: v.accountUuid,
      resourceKind: 'volumes',
      resourceUuid: v.uuid,
      queueKey: `volume:${v.uuid}`,
    });
  }
  return expired.length;
}

/** Runs reapExpiredVolumes every `settings.reaperIntervalSeconds`; start/stop with the node. */
export class VolumeReaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly settings: Pick<Settings, 'retentionSeconds' | 'reaperIntervalSeconds'>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => {
      if (this.running) return; // a slow pass is never overlapped by the next
      this.running = reapExpiredVolumes(this.ctx, this.settings)
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
        });
    }, this.settings.reaperIntervalSeconds * 1000);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
