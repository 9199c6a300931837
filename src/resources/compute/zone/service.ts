/** Zones: the top of the infrastructure tree. Admin-managed, visible to every account. */
import { zones as contract } from '../../../contract/foundation.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Blocker, Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';

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

/** Zones: a name and a description; update, enable/disable and delete are the standard ones. */
export function zoneService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family,
    schema: zoneSchema,
    blockers,
    states: ENABLE_DISABLE,
    fields: () => ({}),
    mapCreateError: nameTaken,
    mapUpdateError: nameTaken,
  });
}
