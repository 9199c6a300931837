/** The networking family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import { vmNicSchema } from '../compute/vm-nic/model.js';
import { VmNicService } from '../compute/vm-nic/service.js';
import { eipSchema, eipService } from '../network/eip/service.js';
import { ipAddressSchema, ipAddressService } from '../network/ip-address/service.js';
import { IpRangeService, ipRangeSchema } from '../network/ip-range/service.js';
import { L2NetworkService, l2NetworkClusterSchema, l2NetworkSchema } from '../network/l2-network/service.js';
import { L3NetworkService, l3NetworkSchema } from '../network/l3-network/service.js';
import { pfSchema, pfService } from '../network/port-forwarding/service.js';
import { securityGroupRuleSchema, securityGroupSchema } from '../network/security-group/model.js';
import { securityGroupRuleService } from '../network/security-group/rule-service.js';
import { securityGroupService } from '../network/security-group/service.js';
import { vipSchema, vipService } from '../network/vip/service.js';
import { routerSchema, routerService } from '../network/virtual-router/service.js';
import { vrOfferingSchema, vrOfferingService } from '../network/virtual-router-offering/service.js';
import { vxlanPoolSchema, vxlanPoolService } from '../network/vxlan-pool/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const networkSchemas: KindSchema[] = [
  vxlanPoolSchema,
  l2NetworkSchema,
  // query-only: reached through l2-networks' clusterRefs, no routes
  l2NetworkClusterSchema,
  l3NetworkSchema,
  ipRangeSchema,
  ipAddressSchema,
  vrOfferingSchema,
  vipSchema,
  eipSchema,
  pfSchema,
  routerSchema,
  securityGroupSchema,
  securityGroupRuleSchema,
  vmNicSchema,
];

export function networkServices(ctx: ServiceContext): KindService[] {
  return [
    vxlanPoolService(ctx),
    new L2NetworkService(ctx),
    new L3NetworkService(ctx),
    new IpRangeService(ctx),
    ipAddressService(),
    vrOfferingService(ctx),
    vipService(ctx),
    eipService(ctx),
    pfService(ctx),
    routerService(ctx),
    securityGroupService(ctx),
    securityGroupRuleService(ctx),
    new VmNicService(ctx),
  ];
}
