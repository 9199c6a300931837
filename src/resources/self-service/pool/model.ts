/**
 * Pools: the family, the query schema (over `pools_with_stock`, which adds the counts) and the
 * API shape. A pool is the admin's; `shared` makes it visible to every account, which may then
 * take VMs from it (allocate) but change nothing.
 */
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';

export const poolFamily: Family = { singular: 'pool', kind: 'pools', table: 'pools' };

export const poolSchema: KindSchema = {
  kind: 'pools',
  table: 'poolsWithStock',
  visibility: 'owned',
  publicColumn: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    state: { enum: ['Enabled', 'Disabled'] },
    imageUuid: 'uuid',
    instanceOfferingUuid: 'uuid',
    warmTarget: 'int',
    cap: 'int',
    defaultLeaseSeconds: 'int',
    maxLeaseSeconds: 'int',
    maxRenewals: 'int',
    perUserLimit: 'int',
    shared: 'boolean',
    emptyPolicy: { enum: ['fail', 'wait'] },
    waitSeconds: 'int',
    floatingL3NetworkUuid: 'uuid',
    loginUser: 'string',
    ready: 'int',
    provisioning: 'int',
    allocated: 'int',
    burstWindowSeconds: 'int',
    burstThreshold: 'int',
    burstFactor: 'number',
    burstMaxFactor: 'number',
    sizeFactor: 'number',
    sizeChangedAt: 'timestamp',
    effectiveCap: 'int',
    effectiveWarmTarget: 'int',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  selectOnly: ['l3NetworkUuids', 'securityGroupUuids', 'userData'],
  relations: {
    image: { kind: 'images', local: 'imageUuid', remote: 'uuid' },
    instanceOffering: { kind: 'instance-offerings', local: 'instanceOfferingUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/** The pool settings a hand-out and the stock passes read. */
export interface PoolFacts {
  uuid: string;
  name: string;
  accountUuid: string;
  state: string;
  imageUuid: string;
  instanceOfferingUuid: string;
  l3NetworkUuids: string[];
  securityGroupUuids: string[];
  warmTarget: number;
  cap: number;
  defaultLeaseSeconds: number;
  maxLeaseSeconds: number;
  maxRenewals: number;
  perUserLimit: number;
  emptyPolicy: 'fail' | 'wait';
  waitSeconds: number;
}

export const POOL_DEFAULTS = {
  defaultLeaseSeconds: 7 * 24 * 3600,
  maxLeaseSeconds: 30 * 24 * 3600,
  maxRenewals: 3,
  perUserLimit: 3,
  shared: false,
  emptyPolicy: 'fail' as const,
  waitSeconds: 30,
};
