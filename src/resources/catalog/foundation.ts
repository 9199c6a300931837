/** The foundation kinds: infrastructure, identity, jobs, events, tags, management nodes. */
import type { KindSchema } from '../../engine/query/schema.js';
import { clusterSchema, clusterService } from '../compute/cluster/service.js';
import { HostService, hostSchema } from '../compute/host/service.js';
import { zoneSchema, zoneService } from '../compute/zone/service.js';
import { AccountService, accountSchema, UserService, userSchema } from '../identity/account/service.js';
import { EventService, eventSchema } from '../operations/event/service.js';
import { JobService, jobSchema } from '../operations/job/service.js';
import { ManagementNodeService, managementNodeSchema } from '../operations/management-node/service.js';
import { type TagService, tagSchema } from '../operations/tag/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const foundationSchemas: KindSchema[] = [
  zoneSchema,
  clusterSchema,
  hostSchema,
  accountSchema,
  userSchema,
  jobSchema,
  eventSchema,
  tagSchema,
  managementNodeSchema,
];

/** `deadAfterMs`: a node silent this long is dead (what management-nodes reports as Unreachable) */
export function foundationServices(
  ctx: ServiceContext,
  tags: TagService,
  deadAfterMs: number,
): KindService[] {
  return [
    zoneService(ctx),
    clusterService(ctx),
    new HostService(ctx),
    new AccountService(ctx),
    new UserService(ctx),
    new JobService(ctx),
    new EventService(ctx.db),
    tags,
    new ManagementNodeService(ctx.db, deadAfterMs),
  ];
}
