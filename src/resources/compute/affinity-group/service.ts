/**
 * Affinity groups: a tenant's rule that its VMs run on one host (affinity) or on different hosts
 * (anti-affinity), enforced by the scheduler — hard (a placement breaking it is refused) or soft
 * (preferred). Members are the VMs naming the group; a group with VMs (destroyed ones included,
 * until they are expunged) cannot be deleted, which the foreign key backs.
 */
import { affinityGroups as contract } from '../../../contract/compute.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { standardKind } from '../../standard.js';

export const affinityGroupFamily: Family = {
  singular: 'affinity-group',
  kind: 'affinity-groups',
  table: 'affinityGroups',
};

export const affinityGroupSchema: KindSchema = {
  kind: 'affinity-groups',
  table: 'affinityGroups',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    policy: { enum: ['affinity', 'anti-affinity'] },
    enforcement: { enum: ['hard', 'soft'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    vms: { kind: 'vms', local: 'uuid', remote: 'affinityGroupUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export function affinityGroupService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family: affinityGroupFamily,
    schema: affinityGroupSchema,
    blockers: [{ table: 'vms', column: 'affinityGroupUuid', what: 'vms' }],
    fields: (body) => ({
      policy: body.policy as string,
      enforcement: (body.enforcement as string | undefined) ?? 'hard',
    }),
  });
}
