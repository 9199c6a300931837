/** Clusters: hosts of one hypervisor type inside a zone. Admin-only. */
import { clusters as contract } from '../../contract/kinds.js';
import { mapUnique } from '../../db/errors.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { invalidField } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import { admitCreate, type Blocker, type Family } from '../common.js';
import type { KindService, ServiceContext } from '../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../standard.js';

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

export class ClusterService implements KindService {
  readonly contract = contract;
  readonly schema = clusterSchema;
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
      schema: clusterSchema,
      blockers,
      states: ENABLE_DISABLE,
      simpleCreate: true,
      mapUpdateError: nameTaken,
    }));
  }

  create(caller: Caller, body: Record<string, unknown>) {
    const zoneUuid = body.zoneUuid as string;
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      zoneUuid,
      hypervisorType: body.hypervisorType as string,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, family, caller, row, body, {
      // checked inside the creating transaction; the foreign key backs it against a concurrent zone delete
      check: async (tx) => {
        const zone = await tx
          .selectFrom('zones')
          .select('uuid')
          .where('uuid', '=', zoneUuid)
          .forShare()
          .executeTakeFirst();
        if (!zone) throw invalidField('zoneUuid', `no zone ${zoneUuid}`, 'ZONE_NOT_FOUND');
      },
      mapError: nameTaken,
    });
  }
}
