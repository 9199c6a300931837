/**
 * Security groups (docs/network.md "Security groups"): any account's; names unique per account
 * (SECURITY_GROUP_NAME_TAKEN). Every account has a default group, made on its first use (see
 * default-group.ts): listing security groups or rules, or creating a group, makes it first, so
 * the name 'default' is always taken by it. The default group keeps its name and cannot be
 * deleted (SECURITY_GROUP_DEFAULT); any group is kept while NICs are in it or while a rule of
 * another group names it as remote group (SECURITY_GROUP_IN_USE). Membership changes are chains
 * (membership.ts); deleting a group re-syncs nothing, since it has no members.
 */
import type { FastifyInstance } from 'fastify';
import { securityGroups as contract } from '../../../contract/network.js';
import { isForeignKeyViolation, mapUnique } from '../../../db/errors.js';
import type { Db } from '../../../db/pool.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, conflict } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import {
  admitCreate,
  changeFlow,
  createRecordStep,
  loadVisible,
  readRow,
  resourceEvent,
  submitFor,
} from '../../common.js';
import type { FlowDeps, KindService, ServiceContext } from '../../service.js';
import { ensureDefaultGroup } from './default-group.js';
import { addNicsFlow, checkNics, removeNicsFlow } from './membership.js';
import { DEFAULT_GROUP_NAME, securityGroupFamily as family, securityGroupSchema as schema } from './model.js';

const nameTaken = (name: unknown) =>
  new CloudError(
    'AlreadyExists',
    'SECURITY_GROUP_NAME_TAKEN',
    name === DEFAULT_GROUP_NAME
      ? `'${DEFAULT_GROUP_NAME}' is the name of the account’s default group`
      : `the account already has a security group named '${name}'`,
    { details: { field: 'name' } },
  );

function mapNameTaken(err: unknown): unknown {
  return mapUnique(
    err,
    'SECURITY_GROUP_NAME_TAKEN',
    'the account already has a security group with this name',
  );
}

const defaultRefused = (uuid: string, what: string) =>
  conflict(
    'SECURITY_GROUP_DEFAULT',
    `security group ${uuid} is the account’s default group; it cannot be ${what}`,
    {
      securityGroupUuid: uuid,
    },
  );

/** Refuses deleting a group that NICs are in, or that another group's rule names as its remote group. */
async function assertUnused(db: Db, uuid: string): Promise<void> {
  const member = await db
    .selectFrom('vmNicSecurityGroups')
    .select('vmNicUuid')
    .where('securityGroupUuid', '=', uuid)
    .limit(1)
    .executeTakeFirst();
  if (member)
    throw conflict(
      'SECURITY_GROUP_IN_USE',
      `security group ${uuid} still has member NICs (e.g. ${member.vmNicUuid}); remove them first (remove-nics)`,
      { members: 'present' },
    );
  const referencing = await db
    .selectFrom('securityGroupRules')
    .select(['uuid', 'securityGroupUuid'])
    .where('remoteSecurityGroupUuid', '=', uuid)
    .where('securityGroupUuid', '<>', uuid)
    .orderBy('uuid')
    .execute();
  if (referencing.length > 0)
    throw conflict(
      'SECURITY_GROUP_IN_USE',
      `security group ${uuid} is the remote group of rules of other groups (${[
        ...new Set(referencing.map((r) => r.securityGroupUuid)),
      ].join(', ')}); delete those rules first`,
      { referencingRuleUuids: referencing.map((r) => r.uuid) },
    );
}

const deleteFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'security-group.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-record',
      describe: 'delete the security group',
      async run(ctx) {
        try {
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            const row = await tx
              .selectFrom('securityGroups')
              .select(['uuid', 'accountUuid', 'isDefault'])
              .where('uuid', '=', ctx.params.uuid)
              .forUpdate()
              .executeTakeFirst();
            if (!row) return; // already gone: deleting is idempotent
            if (row.isDefault) throw defaultRefused(row.uuid, 'deleted');
            await assertUnused(tx as unknown as Db, row.uuid);
            await tx.deleteFrom('securityGroups').where('uuid', '=', row.uuid).execute();
            await tx.deleteFrom('tags').where('resourceUuid', '=', row.uuid).execute();
            batch.add({ ...resourceEvent(family, row, 'deleted'), jobUuid: ctx.job.uuid });
          });
        } catch (err) {
          // a NIC joined or a rule named it in the meantime (VM create joins outside this queue)
          if (isForeignKeyViolation(err))
            throw conflict('SECURITY_GROUP_IN_USE', `security group ${ctx.params.uuid} came into use`, {});
          throw err;
        }
      },
    },
  ],
};

export function securityGroupService(ctx: ServiceContext): KindService {
  ctx.engine.register({
    kind: 'security-group.create',
    recovery: 'resume',
    steps: [createRecordStep(family)],
    result: (c) => readRow(c.db, family.table, c.job.resourceUuid!),
  });
  ctx.engine.register(changeFlow(family, 'security-group.update', 'updated', { mapError: mapNameTaken }));
  ctx.engine.register(deleteFlow);
  ctx.engine.register(addNicsFlow);
  ctx.engine.register(removeNicsFlow);

  const load = (caller: Caller, uuid: string) => loadVisible(ctx, schema, uuid, caller);
  const membership =
    (action: 'add-nics' | 'remove-nics') =>
    async (caller: Caller, uuid: string, body: Record<string, unknown>) => {
      const group = await load(caller, uuid);
      const vmNicUuids = body.vmNicUuids as string[];
      await checkNics(ctx.db, caller, group, vmNicUuids);
      return submitFor(ctx, family, caller, group, `security-group.${action}`, { vmNicUuids });
    };

  return {
    contract,
    schema,
    async create(caller, body) {
      await ensureDefaultGroup(ctx.db, ctx.events, caller.accountUuid);
      if (body.name === DEFAULT_GROUP_NAME) throw nameTaken(body.name);
      const row = {
        uuid: newId(),
        name: body.name as string,
        description: (body.description as string | undefined) ?? null,
        accountUuid: caller.accountUuid,
      };
      return admitCreate(ctx, family, caller, row, body, {
        mapError: (err) => (mapNameTaken(err) === err ? err : nameTaken(body.name)),
      });
    },
    async update(caller, uuid, body) {
      const row = await load(caller, uuid);
      if (body.name !== undefined && body.name !== row.name) {
        if (row.isDefault) throw defaultRefused(uuid, 'renamed');
        if (body.name === DEFAULT_GROUP_NAME) throw nameTaken(body.name);
      }
      return submitFor(ctx, family, caller, row, 'security-group.update', { changes: body });
    },
    async remove(caller, uuid) {
      const row = await load(caller, uuid);
      if (row.isDefault) throw defaultRefused(uuid, 'deleted');
      await assertUnused(ctx.db, uuid); // answered at once; the flow checks again
      return submitFor(ctx, family, caller, row, 'security-group.delete');
    },
    actions: { 'add-nics': membership('add-nics'), 'remove-nics': membership('remove-nics') },
    /** the default group exists before the account's first read of its groups or rules */
    routes(app: FastifyInstance) {
      app.addHook('preHandler', async (request) => {
        if (request.method !== 'GET' || !request.caller) return;
        const url = request.routeOptions.url;
        if (url !== '/v1/security-groups' && url !== '/v1/security-group-rules') return;
        await ensureDefaultGroup(ctx.db, ctx.events, request.caller.accountUuid);
      });
    },
  };
}
