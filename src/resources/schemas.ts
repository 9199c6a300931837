/** Every kind's query schema in one registry: nested queries may follow relations to any of them. */
import { createRegistry } from '../engine/query/schema.js';
import { clusterSchema } from './cluster/service.js';
import { eventSchema } from './event/service.js';
import { hostSchema } from './host/service.js';
import { accountSchema, userSchema } from './identity/service.js';
import { jobSchema } from './job/service.js';
import { tagSchema } from './tag/service.js';
import { zoneSchema } from './zone/service.js';

export function kindRegistry() {
  return createRegistry([
    zoneSchema,
    clusterSchema,
    hostSchema,
    accountSchema,
    userSchema,
    jobSchema,
    eventSchema,
    tagSchema,
  ]);
}
