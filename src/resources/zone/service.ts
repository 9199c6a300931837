/** Zones: the top of the infrastructure tree. Admin-managed, visible to every account. */
import { zones as contract } from '../../contract/kinds.js';
import { mapUnique } from '../../db/errors.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { newId } from '../../kernel/ids.js';
import { admitCreate, type Blocker, type Family } from '../common.js';
import type { KindService, ServiceContext } from '../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../standard.js';

const family: Family = { singular: 'zone', kind: 'zones', table: 'zones' };
const blockers: Blocker[] = [
  { table: 'clusters', column: 'zoneUuid', what: 'clusters' },
  { table: 'primaryStorages', column: 'zoneUuid', what: 'primary-storages' },
  { table: 'backupStorageZones', column: 'zoneUuid', what: 'backup-storages', remedy: 'detach them first' },
];
const nameTaken = (err: unknown) => mapUnique(err, 'ZONE_NAME_TAKEN', 'a zone with this name already exists');

export const zoneSchema: KindSchema = {
  kind: 'zones',
  table: 'zones',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    clusters: { kind: 'clusters', local: 'uuid', remote: 'zoneUuid', many: true },
    hosts: { kind: 'hosts', local: 'uuid', remote: 'zoneUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export class ZoneService implements KindService {
  readonly contract = contract;
  readonly schema = zoneSchema;
  readonly update: StandardOperations['update'];
  readonly remove: StandardOperations['remove'];
  readonly actions: StandardOperations['actions'];

  constructor(private readonly ctx: ServiceContext) {
    ({
      update: this.update,
      remove: this.remove,
      actions: this.actions,
    } = standardOperations(ctx, {
      family,
      schema: zoneSchema,
      blockers,
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
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, family, caller, row, body, { mapError: nameTaken });
  }
}
