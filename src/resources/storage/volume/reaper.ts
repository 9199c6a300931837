/** The volume reaper: soft-deleted volumes are expunged after the retention (see ../reaper.ts). */
import type { Settings } from '../../../kernel/settings.js';
import { reapSoftDeleted } from '../../reaper.js';
import type { ServiceContext } from '../../service.js';

export function reapExpiredVolumes(
  ctx: Pick<ServiceContext, 'db' | 'engine'>,
  settings: Pick<Settings, 'retentionSeconds'>,
  now?: Date,
): Promise<number> {
  return reapSoftDeleted(ctx, { table: 'volumes', singular: 'volume' }, settings, now);
}
