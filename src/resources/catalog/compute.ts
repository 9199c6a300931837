/** The compute family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { affinityGroupSchema, affinityGroupService } from '../compute/affinity-group/service.js';
import { instanceOfferingSchema, instanceOfferingService } from '../compute/instance-offering/service.js';
import { vmSchema } from '../compute/vm/model.js';
import { VmService } from '../compute/vm/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const computeSchemas: KindSchema[] = [instanceOfferingSchema, affinityGroupSchema, vmSchema];

export function computeServices(ctx: ServiceContext): KindService[] {
  return [instanceOfferingService(ctx), affinityGroupService(ctx), new VmService(ctx)];
}
