/** The networking family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { eipSchema, eipService } from '../eip/service.js';
import { pfSchema, pfService } from '../port-forwarding/service.js';
import { securityGroupRuleSchema, securityGroupSchema } from '../security-group/model.js';
import { securityGroupRuleService } from '../security-group/rule-service.js';
import { securityGroupService } from '../security-group/service.js';
import type { KindService, ServiceContext } from '../service.js';
import { vipSchema, vipService } from '../vip/service.js';
import { routerSchema, routerService } from '../virtual-router/service.js';
import { vrOfferingSchema, vrOfferingService } from '../virtual-router-offering/service.js';

export const networkSchemas: KindSchema[] = [
  vrOfferingSchema,
  vipSchema,
  eipSchema,
  pfSchema,
  routerSchema,
  securityGroupSchema,
  securityGroupRuleSchema,
];

export function networkServices(ctx: ServiceContext): KindService[] {
  return [
    vrOfferingService(ctx),
    vipService(ctx),
    eipService(ctx),
    pfService(ctx),
    routerService(ctx),
    securityGroupService(ctx),
    securityGroupRuleService(ctx),
  ];
}
