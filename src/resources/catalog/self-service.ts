/** The self-service family's kinds: pools of warm VMs and their leases, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { leaseSchema } from '../self-service/lease/model.js';
import { LeaseService } from '../self-service/lease/service.js';
import { poolSchema } from '../self-service/pool/model.js';
import { poolService } from '../self-service/pool/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const selfServiceSchemas: KindSchema[] = [poolSchema, leaseSchema];

export function selfServiceServices(ctx: ServiceContext): KindService[] {
  return [poolService(ctx), new LeaseService(ctx)];
}
