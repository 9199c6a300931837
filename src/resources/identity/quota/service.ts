/**
 * Quotas as an API kind: `GET /v1/quotas` lists limits and usage (an account sees its own, the
 * admin every account's; names without a row of their own show their default, materialised on
 * read), `PATCH /v1/quotas/{accountUuid}` (admin) sets limits, e.g. `{"vm.num": 50}`. A limit
 * may be set below current usage: nothing is taken away, new reservations are refused.
 * Enforcement lives in quota.ts (reserveQuota at admission).
 */
import type { FastifyInstance } from 'fastify';
import { quotas as contract } from '../../../contract/volumes.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError } from '../../../kernel/errors.js';
import { isUuid } from '../../../kernel/ids.js';
import { type Family, resourceEvent } from '../../common.js';
import type { FlowDeps, KindService, Operation, ServiceContext } from '../../service.js';
import { ensureDefaultQuotas, QUOTA_DEFAULTS, QUOTA_NAMES, type QuotaName } from './quota.js';

const family: Family = { singular: 'quota', kind: 'quotas', table: 'quotas' };

export const quotaSchema: KindSchema = {
  kind: 'quotas',
  table: 'quotaUsage',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    accountUuid: 'uuid',
    name: { enum: QUOTA_NAMES },
    limit: 'int',
    used: 'int',
    updatedAt: 'timestamp',
  },
  relations: { account: { kind: 'accounts', local: 'accountUuid', remote: 'uuid' } },
  defaultSort: 'name',
};

interface UpdateParams {
  accountUuid: string;
  limits: Partial<Record<QuotaName, number>>;
}

const quotaUpdateFlow: FlowDef<UpdateParams, FlowDeps> = {
  kind: 'quota.update',
  recovery: 'rollback',
  steps: [
    {
      name: 'apply',
      describe: 'set the limits',
      async run(ctx) {
        const { accountUuid, limits } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          await ensureDefaultQuotas(tx, accountUuid);
          const previous: Record<string, number> = {};
          for (const [name, limit] of Object.entries(limits)) {
            const old = await tx
              .selectFrom('quotas')
              .select('limitValue')
              .where('accountUuid', '=', accountUuid)
              .where('name', '=', name)
              .forUpdate()
              .executeTakeFirst();
            previous[name] = old?.limitValue ?? QUOTA_DEFAULTS[name as QuotaName];
            await tx
              .updateTable('quotas')
              .set({ limitValue: limit, updatedAt: new Date() })
              .where('accountUuid', '=', accountUuid)
              .where('name', '=', name)
              .execute();
          }
          ctx.data.previous = previous;
          batch.add({
            ...resourceEvent(family, { uuid: accountUuid, accountUuid }, 'updated', { limits, previous }),
            jobUuid: ctx.job.uuid,
          });
        });
      },
      async rollback(ctx) {
        const previous = ctx.data.previous as Record<string, number> | undefined;
        if (!previous) return;
        for (const [name, limit] of Object.entries(previous)) {
          await ctx.db
            .updateTable('quotas')
            .set({ limitValue: limit, updatedAt: new Date() })
            .where('accountUuid', '=', ctx.params.accountUuid)
            .where('name', '=', name)
            .execute();
        }
      },
    },
  ],
  result: (ctx) =>
    ctx.db
      .selectFrom('quotaUsage')
      .selectAll()
      .where('accountUuid', '=', ctx.params.accountUuid)
      .orderBy('name')
      .execute(),
};

export class QuotaService implements KindService {
  readonly contract = contract;
  readonly schema = quotaSchema;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(quotaUpdateFlow);
  }

  /** `{uuid}` is the account (a quota row's uuid stands for its account too). */
  update: Operation = async (caller: Caller, uuid: string, body: Record<string, unknown>) => {
    const account = await this.accountFor(uuid);
    if (account.type === 'admin') {
      throw new CloudError('Invalid', 'QUOTA_NOT_APPLICABLE', 'the admin account has no quotas', {
        details: { accountUuid: account.uuid },
      });
    }
    return this.ctx.engine.submitAndStart({
      kind: 'quota.update',
      params: { accountUuid: account.uuid, limits: body },
      accountUuid: account.uuid,
      userUuid: caller.userUuid,
      resourceKind: 'quotas',
      resourceUuid: account.uuid,
      queueKey: `quota:${account.uuid}`,
      requestId: caller.requestId,
    });
  };

  private async accountFor(uuid: string): Promise<{ uuid: string; type: string }> {
    const missing = new CloudError('NotFound', 'ACCOUNT_NOT_FOUND', `account ${uuid} not found`, {
      details: { kind: 'account', id: uuid },
    });
    if (!isUuid(uuid)) throw missing;
    const account = await this.ctx.db
      .selectFrom('accounts')
      .select(['uuid', 'type'])
      .where('uuid', '=', uuid)
      .executeTakeFirst();
    if (account) return account;
    const viaRow = await this.ctx.db
      .selectFrom('quotas as q')
      .innerJoin('accounts as a', 'a.uuid', 'q.accountUuid')
      .select(['a.uuid', 'a.type'])
      .where('q.uuid', '=', uuid)
      .executeTakeFirst();
    if (!viaRow) throw missing;
    return viaRow;
  }

  /** Rows with default limits are written before a read, so every name shows up. */
  routes(app: FastifyInstance): void {
    app.addHook('preHandler', async (request) => {
      if (request.method !== 'GET' || !request.routeOptions.url?.startsWith('/v1/quotas') || !request.caller)
        return;
      await ensureDefaultQuotas(this.ctx.db, request.caller.isAdmin ? undefined : request.caller.accountUuid);
    });
  }
}
