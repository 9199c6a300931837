/**
 * Disk offerings: sizes users pick for data volumes. The admin creates them; every account reads
 * them ('shared'). A volume copies the size when it is created, so changing or deleting an
 * offering never changes a volume. Disabled offerings are kept for the volumes that name them
 * but should not be offered for new ones (the volume service decides).
 */
import { diskOfferings as contract } from '../../../contract/storage.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';

export const diskOfferingFamily: Family = {
  singular: 'disk-offering',
  kind: 'disk-offerings',
  table: 'diskOfferings',
};
const nameTaken = (err: unknown) =>
  mapUnique(err, 'DISK_OFFERING_NAME_TAKEN', 'a disk offering with this name already exists');

export const diskOfferingSchema: KindSchema = {
  kind: 'disk-offerings',
  table: 'diskOfferings',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    size: 'int',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  defaultSort: 'createdAt',
};

export function diskOfferingService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family: diskOfferingFamily,
    schema: diskOfferingSchema,
    states: ENABLE_DISABLE,
    fields: (body) => ({ size: body.size as number }),
    mapCreateError: nameTaken,
    mapUpdateError: nameTaken,
  });
}
