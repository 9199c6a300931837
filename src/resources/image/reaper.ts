/**
 * The image reaper: a Deleted image is expunged `settings.retentionSeconds` after its delete
 * (ZStack's Delay policy, as for VMs and volumes). Each expired image gets an ordinary
 * `image.expunge` job in its own queue, so an expunge is journaled and retried like any other;
 * an image whose expunge is already pending is left to that job. Any node may run it: a second
 * expunge of the same image finds it gone and succeeds.
 */
import type { Settings } from '../../kernel/settings.js';
import type { ServiceContext } from '../service.js';

/** how many images one pass submits at most (the next pass takes the rest) */
const BATCH = 200;

/** Submits an expunge job for every image Deleted longer than the retention; returns how many. */
export async function reapExpiredImages(
  ctx: Pick<ServiceContext, 'db' | 'engine'>,
  settings: Pick<Settings, 'retentionSeconds'>,
  now: Date = new Date(),
): Promise<number> {
  const cutoff = new Date(now.getTime() - settings.retentionSeconds * 1000);
  const expired = await ctx.db
    .selectFrom('images as i')
    .select(['i.uuid', 'i.accountUuid'])
    .where('i.state', '=', 'Deleted')
    .where('i.deletedAt', '<=', cutoff)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('jobs as j')
            .select('j.uuid')
            .whereRef('j.resourceUuid', '=', 'i.uuid')
            .where('j.kind', '=', 'image.expunge')
            .where('j.state', 'in', ['Pending', 'Running']),
        ),
      ),
    )
    .orderBy('i.deletedAt')
    .limit(BATCH)
    .execute();
  for (const image of expired) {
    await ctx.engine.submitAndStart({
      kind: 'image.expunge',
      params: { uuid: image.uuid, reason: 'retention expired' },
      accountUuid: image.accountUuid,
      resourceKind: 'images',
      resourceUuid: image.uuid,
      queueKey: `image:${image.uuid}`,
    });
  }
  return expired.length;
}

/** Runs reapExpiredImages every `settings.reaperIntervalSeconds`; start/stop with the node. */
export class ImageReaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly ctx: Pick<ServiceContext, 'db' | 'engine'>,
    private readonly settings: Pick<Settings, 'retentionSeconds' | 'reaperIntervalSeconds'>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => {
      if (this.running) return; // a slow pass is never overlapped by the next
      this.running = reapExpiredImages(this.ctx, this.settings)
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
