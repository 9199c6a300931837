/**
 * Disk offerings: sizes users pick for data volumes. The admin creates them; every account reads
 * them ('shared'). A volume copies the size when it is created, so changing or deleting an
 * offering never changes a volume. Disabled offerings are kept for the volumes that name them
 * but should not be offered for new ones (the volume service decides).
 */
import { diskOfferings as contract } from '../../contract/storage.js';
import { mapUnique } from '../../db/errors.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { newId } from '../../kernel/ids.js';
import { admitCreate, type Family } from '../common.js';
import type { KindService, ServiceContext } from '../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../standard.js';

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

export class DiskOfferingService implements KindService {
  readonly contract = contract;
  readonly schema = diskOfferingSchema;
  readonly update: StandardOperations['update'];
  readonly remove: StandardOperations['remove'];
  readonly actions: StandardOperations['actions'];

  constructor(private readonly ctx: ServiceContext) {
    ({
      update: this.update,
      remove: this.remove,
      actions: this.actions,
    } = standardOperations(ctx, {
      family: diskOfferingFamily,
      schema: diskOfferingSchema,
      states: ENABLE_DISABLE,
      simpleCreate: true,
      mapUpdateError: nameTaken,
    }));
  }

  create(caller: Caller, body: Record<string, unknown>) {
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      size: body.size as number,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, diskOfferingFamily, caller, row, body, { mapError: nameTaken });
  }
}
