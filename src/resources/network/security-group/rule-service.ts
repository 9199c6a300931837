/**
 * Security-group rules: created and deleted by the owner of their group (another account's
 * group is a 404), owned by the group's account. A rule changes the state of the hosts running
 * a member of its group (hostsRunningMembers), so both chains end by re-syncing exactly those:
 *
 *   create: create-record (at admission) → sync-hosts
 *   delete: delete-record → sync-hosts
 *
 * A failed sync rolls the record back (created → deleted, deleted → restored) and re-syncs the
 * same hosts, so the hosts end with the rules the database has. Duplicates are refused by the
 * unique index security_group_rules_same_key (SECURITY_GROUP_RULE_EXISTS), concurrent ones too.
 */
import { securityGroupRules as contract } from '../../../contract/network.js';
import { isForeignKeyViolation, isUniqueViolation } from '../../../db/errors.js';
import type { SecurityGroupRuleTable } from '../../../db/schema.js';
import type { FlowDef, StepContext } from '../../../engine/flow.js';
import { CloudError, invalid, invalidField, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadReferenced, loadVisible, readRow, resourceEvent, submitFor } from '../../common.js';
import type { FlowDeps, KindService, ServiceContext } from '../../service.js';
import { hostsRunningMembers } from './host-state.js';
import {
  securityGroupRuleFamily as family,
  securityGroupRuleSchema as schema,
  securityGroupSchema,
} from './model.js';
import { ruleFields } from './rule-input.js';

type RuleRow = Omit<SecurityGroupRuleTable, 'ipVersion' | 'createdAt' | 'updatedAt'> & {
  ipVersion: number;
  createdAt: string | Date;
  updatedAt: string | Date;
};

interface CreateParams {
  securityGroupUuid: string;
}

interface DeleteParams {
  uuid: string;
  /** the rule as it was at admission (rules never change): what a rollback puts back */
  rule: RuleRow;
}

async function syncGroupHosts(ctx: StepContext<unknown, FlowDeps>, group: string): Promise<void> {
  await ctx.deps.network.sync(await hostsRunningMembers(ctx.db, [group]));
}

function mapCreateError(err: unknown, body: Record<string, unknown>): unknown {
  const groupUuid = body.securityGroupUuid as string;
  if (isUniqueViolation(err, 'security_group_rules_same_key'))
    return new CloudError('AlreadyExists', 'SECURITY_GROUP_RULE_EXISTS', 'the group already has this rule', {
      details: { securityGroupUuid: groupUuid },
    });
  // the group or the remote group was deleted since it was checked
  if (isForeignKeyViolation(err)) {
    const remote = (err as { constraint?: string }).constraint?.includes('remote');
    return remote
      ? invalidField('remoteSecurityGroupUuid', `no security group ${body.remoteSecurityGroupUuid} (deleted)`)
      : notFound('security-group', groupUuid);
  }
  return err;
}

const createFlow: FlowDef<CreateParams, FlowDeps> = {
  kind: 'security-group-rule.create',
  recovery: 'resume',
  steps: [
    {
      name: 'create-record',
      describe: 'record the rule',
      async run() {},
      async rollback(ctx) {
        const row = await ctx.db
          .deleteFrom('securityGroupRules')
          .where('uuid', '=', ctx.job.resourceUuid!)
          .returning(['uuid', 'accountUuid'])
          .executeTakeFirst();
        if (row)
          await ctx.emit([
            { ...resourceEvent(family, row, 'deleted', { reason: 'rolled back' }), jobUuid: ctx.job.uuid },
          ]);
        await syncGroupHosts(ctx, ctx.params.securityGroupUuid);
      },
    },
    {
      name: 'sync-hosts',
      describe: 'send the hosts of the group’s members their new rules',
      async run(ctx) {
        await syncGroupHosts(ctx, ctx.params.securityGroupUuid);
      },
    },
  ],
  result: (ctx) => readRow(ctx.db, 'securityGroupRules', ctx.job.resourceUuid!),
};

const deleteFlow: FlowDef<DeleteParams, FlowDeps> = {
  kind: 'security-group-rule.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-record',
      describe: 'delete the rule',
      async run(ctx) {
        const row = await ctx.db
          .deleteFrom('securityGroupRules')
          .where('uuid', '=', ctx.params.uuid)
          .returning(['uuid', 'accountUuid'])
          .executeTakeFirst();
        if (row) await ctx.emit([{ ...resourceEvent(family, row, 'deleted'), jobUuid: ctx.job.uuid }]);
      },
      async rollback(ctx) {
        const rule = ctx.params.rule;
        try {
          const row = await ctx.db
            .insertInto('securityGroupRules')
            .values(rule)
            .onConflict((oc) => oc.doNothing())
            .returning(['uuid', 'accountUuid'])
            .executeTakeFirst();
          if (row)
            await ctx.emit([
              { ...resourceEvent(family, row, 'created', { reason: 'rolled back' }), jobUuid: ctx.job.uuid },
            ]);
        } catch (err) {
          // its group (or remote group) is gone meanwhile: the rule cannot come back, nor apply
          if (!isForeignKeyViolation(err)) throw err;
        }
        await syncGroupHosts(ctx, rule.securityGroupUuid);
      },
    },
    {
      name: 'sync-hosts',
      describe: 'send the hosts of the group’s members their rules without it',
      async run(ctx) {
        await syncGroupHosts(ctx, ctx.params.rule.securityGroupUuid);
      },
    },
  ],
};

export function securityGroupRuleService(ctx: ServiceContext): KindService {
  ctx.engine.register(createFlow);
  ctx.engine.register(deleteFlow);
  return {
    contract,
    schema,
    async create(caller, body) {
      const groupUuid = body.securityGroupUuid as string;
      const group = await loadReferenced(ctx, securityGroupSchema, groupUuid, caller, 'securityGroupUuid');
      const { fields, problems } = await ruleFields(ctx.db, group.accountUuid, body);
      if (problems.length > 0) throw invalid(problems);
      const row = { uuid: newId(), securityGroupUuid: groupUuid, accountUuid: group.accountUuid, ...fields };
      const params: CreateParams & Record<string, unknown> = { ...body, securityGroupUuid: groupUuid };
      return admitCreate(ctx, family, caller, row, params, {
        mapError: (err) => mapCreateError(err, body),
      });
    },
    async remove(caller, uuid) {
      const rule = (await loadVisible(ctx, schema, uuid, caller)) as unknown as RuleRow & { uuid: string };
      const stored = await ctx.db
        .selectFrom('securityGroupRules')
        .selectAll()
        .where('uuid', '=', uuid)
        .executeTakeFirst();
      if (!stored) throw notFound(family.singular, uuid);
      return submitFor(ctx, family, caller, rule, 'security-group-rule.delete', { rule: stored });
    },
  };
}
