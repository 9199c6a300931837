/**
 * Instance offerings (flavors): vCPUs and memory, plus an optional placement strategy. The admin
 * creates them; every account reads them ('shared'). A VM copies cpu and memory when it is
 * created, so changing or deleting an offering never changes a VM: deleting one that VMs still
 * name is allowed (as in ZStack) and their `instanceOfferingUuid` becomes null. Disabled
 * offerings refuse new VMs.
 */
import { instanceOfferings as contract } from '../../../contract/compute.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';

export const offeringFamily: Family = {
  singular: 'instance-offering',
  kind: 'instance-offerings',
  table: 'instanceOfferings',
};
const nameTaken = (err: unknown) =>
  mapUnique(err, 'INSTANCE_OFFERING_NAME_TAKEN', 'an instance offering with this name already exists');

export const instanceOfferingSchema: KindSchema = {
  kind: 'instance-offerings',
  table: 'instanceOfferings',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    cpu: 'int',
    memory: 'int',
    allocatorStrategy: { enum: ['spread', 'pack'] },
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    vms: { kind: 'vms', local: 'uuid', remote: 'instanceOfferingUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export function instanceOfferingService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family: offeringFamily,
    schema: instanceOfferingSchema,
    states: ENABLE_DISABLE,
    fields: (body) => ({
      cpu: body.cpu as number,
      memory: body.memory as number,
      allocatorStrategy: (body.allocatorStrategy as string | undefined) ?? null,
    }),
    mapCreateError: nameTaken,
    mapUpdateError: nameTaken,
  });
}
