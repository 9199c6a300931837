/** Resource types the console reads by field, all derived from the contract's schemas (no copies). */
import type { Static } from 'typebox';
import type { Event } from '../../../src/contract/common.js';
import type { vms } from '../../../src/contract/compute.js';
import type { clusters, hosts, zones } from '../../../src/contract/foundation.js';
import type { l3Networks } from '../../../src/contract/network.js';
import type { primaryStorages } from '../../../src/contract/storage.js';

export type Zone = Static<typeof zones.resource>;
export type Cluster = Static<typeof clusters.resource>;
export type Host = Static<typeof hosts.resource>;
export type Vm = Static<typeof vms.resource>;
export type L3Network = Static<typeof l3Networks.resource>;
export type PrimaryStorage = Static<typeof primaryStorages.resource>;
export type CloudEvent = Static<typeof Event>;
/** any resource, read generically by the list and detail pages */
export type Resource = Record<string, unknown>;
