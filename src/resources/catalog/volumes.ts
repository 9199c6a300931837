/** The volumes family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { QuotaService, quotaSchema } from '../identity/quota/service.js';
import type { KindService, ServiceContext } from '../service.js';
import { VolumeService, volumeSchema } from '../storage/volume/service.js';
import { SnapshotService, snapshotSchema } from '../storage/volume-snapshot/service.js';

export const volumesSchemas: KindSchema[] = [volumeSchema, snapshotSchema, quotaSchema];

export function volumesServices(ctx: ServiceContext): KindService[] {
  return [new VolumeService(ctx), new SnapshotService(ctx), new QuotaService(ctx)];
}
