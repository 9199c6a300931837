/** The compute family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { AffinityGroupService, affinityGroupSchema } from '../affinity-group/service.js';
import { InstanceOfferingService, instanceOfferingSchema } from '../instance-offering/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const computeSchemas: KindSchema[] = [instanceOfferingSchema, affinityGroupSchema];

export function computeServices(ctx: ServiceContext): KindService[] {
  return [new InstanceOfferingService(ctx), new AffinityGroupService(ctx)];
}
