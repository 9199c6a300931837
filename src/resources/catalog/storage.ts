/** The storage family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import type { KindService, ServiceContext } from '../service.js';
import {
  BackupStorageService,
  backupStorageSchema,
  backupStorageZoneSchema,
} from '../storage/backup-storage/service.js';
import { diskOfferingSchema, diskOfferingService } from '../storage/disk-offering/service.js';
import { ImageService, imageSchema } from '../storage/image/service.js';
import {
  PrimaryStorageService,
  primaryStorageClusterSchema,
  primaryStorageHostSchema,
  primaryStorageSchema,
} from '../storage/primary-storage/service.js';

export const storageSchemas: KindSchema[] = [
  diskOfferingSchema,
  backupStorageSchema,
  imageSchema,
  primaryStorageSchema,
  // query-only: reached through relations (zoneRefs, clusterRefs, hostShares), no routes
  backupStorageZoneSchema,
  primaryStorageClusterSchema,
  primaryStorageHostSchema,
];

export function storageServices(ctx: ServiceContext): KindService[] {
  return [
    diskOfferingService(ctx),
    new BackupStorageService(ctx),
    new ImageService(ctx),
    new PrimaryStorageService(ctx),
  ];
}
