/** Clusters: hosts of one hypervisor type inside a zone. Admin-only. */
import { clusters as contract } from '../../../contract/foundation.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import { invalidField } from '../../../kernel/errors.js';
import type { Blocker, Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';

const family: Family = { singular: 'cluster', kind: 'clusters', table: 'clusters' };
const blockers: Blocker[] = [
  { table: 'hosts', column: 'clusterUuid', what: 'hosts' },
  {
    table: 'primaryStorageClusters',
    column: 'clusterUuid',
    what: 'primary-storages',
    remedy: 'detach them first',
  },
  {
    table: 'vms',
    column: 'clusterUuid',
    what: 'vms',
    remedy: 'expunge them first (destroyed VMs count until expunged)',
  },
];
const nameTaken = (err: unknown) =>
  mapUnique(err, 'CLUSTER_NAME_TAKEN', 'a cluster with this name already exists in the zone');

export const clusterSchema: KindSchema = {
  kind: 'clusters',
  table: 'clusters',
  visibility: 'admin',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    hypervisorType: 'string',
    state: { enum: ['Enabled', 'Disabled'] },
    hostHa: 'boolean',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    hosts: { kind: 'hosts', local: 'uuid', remote: 'clusterUuid', many: true },
  },
  defaultSort: 'createdAt',
};

/** Clusters: created in an existing zone (checked in the creating transaction, backed by the foreign key). */
export function clusterService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family,
    schema: clusterSchema,
    blockers,
    states: ENABLE_DISABLE,
    fields: (body) => ({
      zoneUuid: body.zoneUuid as string,
      hypervisorType: body.hypervisorType as string,
      hostHa: body.hostHa === true,
    }),
    check: async (tx, body) => {
      const zone = await tx
        .selectFrom('zones')
        .select('uuid')
        .where('uuid', '=', body.zoneUuid as string)
        .forShare()
        .executeTakeFirst();
      if (!zone) throw invalidField('zoneUuid', `no zone ${body.zoneUuid}`, 'ZONE_NOT_FOUND');
    },
    mapCreateError: nameTaken,
    mapUpdateError: nameTaken,
  });
}
