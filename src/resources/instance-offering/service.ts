/**
 * Instance offerings (flavors): vCPUs and memory, plus an optional placement strategy. The admin
 * creates them; every account reads them ('shared'). A VM copies cpu and memory when it is
 * created, so changing or deleting an offering never changes a VM: deleting one that VMs still
 * name is allowed (as in ZStack) and their `instanceOfferingUuid` becomes null. Disabled
 * offerings refuse new VMs.
 */
import { instanceOfferings as contract } from '../../contract/compute.js';
import { mapUnique } from '../../db/errors.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { newId } from '../../kernel/ids.js';
import { admitCreate, type Family } from '../common.js';
import type { KindService, ServiceContext } from '../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../standard.js';

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

export class InstanceOfferingService implements KindService {
  readonly contract = contract;
  readonly schema = instanceOfferingSchema;
  readonly update: StandardOperations['update'];
  readonly remove: StandardOperations['remove'];
  readonly actions: StandardOperations['actions'];

  constructor(private readonly ctx: ServiceContext) {
    ({
      update: this.update,
      remove: this.remove,
      actions: this.actions,
    } = standardOperations(ctx, {
      family: offeringFamily,
      schema: instanceOfferingSchema,
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
      cpu: body.cpu as number,
      memory: body.memory as number,
      allocatorStrategy: (body.allocatorStrategy as string) ?? null,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, offeringFamily, caller, row, body, { mapError: nameTaken });
  }
}
