/** Security groups and their rules: families (queues, events) and query schemas. */
import { SG_DIRECTIONS, SG_PROTOCOLS } from '../../../contract/network.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Family } from '../../common.js';

export const securityGroupFamily: Family = {
  singular: 'security-group',
  kind: 'security-groups',
  table: 'securityGroups',
};

export const securityGroupRuleFamily: Family = {
  singular: 'security-group-rule',
  kind: 'security-group-rules',
  table: 'securityGroupRules',
};

/** the name of every account's default group; no other group may take it */
export const DEFAULT_GROUP_NAME = 'default';

export const securityGroupSchema: KindSchema = {
  kind: 'security-groups',
  table: 'securityGroups',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    isDefault: 'boolean',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    rules: { kind: 'security-group-rules', local: 'uuid', remote: 'securityGroupUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export const securityGroupRuleSchema: KindSchema = {
  kind: 'security-group-rules',
  table: 'securityGroupRules',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    securityGroupUuid: 'uuid',
    accountUuid: 'uuid',
    direction: { enum: SG_DIRECTIONS },
    protocol: { enum: SG_PROTOCOLS },
    portStart: 'int',
    portEnd: 'int',
    remoteCidr: 'string',
    remoteSecurityGroupUuid: 'uuid',
    ipVersion: 'int',
    description: 'string',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    securityGroup: { kind: 'security-groups', local: 'securityGroupUuid', remote: 'uuid' },
    remoteSecurityGroup: { kind: 'security-groups', local: 'remoteSecurityGroupUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};
