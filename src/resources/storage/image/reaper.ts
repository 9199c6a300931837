/** The image reaper: Deleted images are expunged after the retention (see ../reaper.ts). */
import type { Settings } from '../../../kernel/settings.js';
import { reapSoftDeleted } from '../../reaper.js';
import type { ServiceContext } from '../../service.js';

export function reapExpiredImages(
  ctx: Pick<ServiceContext, 'db' | 'engine'>,
  settings: Pick<Settings, 'retentionSeconds'>,
  now?: Date,
): Promise<number> {
  return reapSoftDeleted(ctx, { table: 'images', singular: 'image' }, settings, now);
}
