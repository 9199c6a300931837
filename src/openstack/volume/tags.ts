/**
 * Cinder volume metadata = the volume's Nimbus tags (key → value), set through the tag service
 * (its jobs, events and rules), so a key follows the tag key rules (1–128 of A–Z a–z 0–9 _ . : / -).
 */
import type { Caller } from '../../kernel/caller.js';
import type { TagService } from '../../resources/operations/tag/service.js';
import type { OpenStackDeps } from '../deps.js';
import { serviceOf, settle } from '../network/facade.js';

export const TAG_KEY = '^[A-Za-z0-9_.:/-]{1,128}$';

export async function setMetadata(
  deps: OpenStackDeps,
  caller: Caller,
  volumeUuid: string,
  metadata: Record<string, string>,
): Promise<void> {
  const tags = serviceOf(deps, 'tags') as unknown as TagService;
  const target = { schema: serviceOf(deps, 'volumes').schema, singular: 'volume' };
  for (const [key, value] of Object.entries(metadata))
    await settle(deps, await tags.setTag(caller, target, volumeUuid, { key, value }));
}
