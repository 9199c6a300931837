/**
 * VIPs: an address of a public L3 network held by an account, for one kind of service at a time
 * (`used_for`: an EIP, or port-forwarding rules; docs/network.md "VIPs, EIPs, port forwarding").
 *
 * The address is allocated from IPAM (used_for 'vip', owner = the VIP) in the admission
 * transaction, together with the VIP row and its job: a refused or exhausted request leaves
 * nothing. The create chain is only `create-record`, whose rollback deletes the row and releases
 * the address. Delete is refused while an EIP or port-forwarding rules use the VIP (VIP_IN_USE),
 * checked under the VIP's row lock — the lock EIP and port-forwarding admissions take too.
 */
import { vips as contract } from '../../../contract/network.js';
import type { Executor, Tx } from '../../../db/transaction.js';
import type { FlowDef, FlowStep } from '../../../engine/flow.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import {
  admitCreate,
  changeFlow,
  type Family,
  loadVisible,
  readRow,
  resourceEvent,
  submitFor,
} from '../../common.js';
import type { FlowDeps, KindService, Operation, ServiceContext } from '../../service.js';
import { allocateIp, releaseIps } from '../ipam/index.js';

export const vipFamily: Family = { singular: 'vip', kind: 'vips', table: 'vips' };

export const vipSchema: KindSchema = {
  kind: 'vips',
  table: 'vips',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    l3NetworkUuid: 'uuid',
    ip: 'string',
    usedFor: { enum: ['eip', 'port-forwarding'] },
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    l3Network: { kind: 'l3-networks', local: 'l3NetworkUuid', remote: 'uuid' },
    eips: { kind: 'eips', local: 'uuid', remote: 'vipUuid', many: true },
    portForwardingRules: { kind: 'port-forwarding-rules', local: 'uuid', remote: 'vipUuid', many: true },
  },
  defaultSort: 'createdAt',
};

/** The L3 a VIP may come from: public, Enabled, and the caller's own or shared (admin: any). */
async function usablePublicL3(tx: Tx, caller: Caller, l3Uuid: string) {
  const l3 = await tx
    .selectFrom('l3Networks')
    .select(['uuid', 'category', 'state', 'accountUuid', 'shared'])
    .where('uuid', '=', l3Uuid)
    .forShare()
    .executeTakeFirst();
  if (!l3 || !(caller.isAdmin || l3.shared || l3.accountUuid === caller.accountUuid))
    throw invalid([{ field: 'l3NetworkUuid', problem: `no L3 network ${l3Uuid}` }]);
  if (l3.category !== 'public')
    throw invalid([
      { field: 'l3NetworkUuid', problem: `L3 network ${l3Uuid} is ${l3.category}; a VIP needs a public one` },
    ]);
  if (l3.state !== 'Enabled')
    throw new CloudError('Conflict', 'L3_NETWORK_NOT_USABLE', `L3 network ${l3Uuid} is ${l3.state}`, {
      details: { l3NetworkUuid: l3Uuid, state: l3.state },
    });
  return l3;
}

const createRecord: FlowStep<Record<string, unknown>, FlowDeps> = {
  name: 'create-record',
  describe: 'record the vip and its address',
  async run() {},
  async rollback(ctx) {
    const uuid = ctx.job.resourceUuid!;
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const row = await tx
        .deleteFrom('vips')
        .where('uuid', '=', uuid)
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      await releaseIps(tx, { ownerUuid: uuid });
      await tx.deleteFrom('tags').where('resourceUuid', '=', uuid).execute();
      if (row)
        batch.add({
          ...resourceEvent(vipFamily, row, 'deleted', { reason: 'rolled back' }),
          jobUuid: ctx.job.uuid,
        });
    });
  },
};

/** Refuses while an EIP or port-forwarding rules use the VIP. */
export async function assertVipFree(tx: Executor, vipUuid: string): Promise<void> {
  const [eip, rule] = await Promise.all([
    tx.selectFrom('eips').select('uuid').where('vipUuid', '=', vipUuid).limit(1).executeTakeFirst(),
    tx
      .selectFrom('portForwardingRules')
      .select('uuid')
      .where('vipUuid', '=', vipUuid)
      .limit(1)
      .executeTakeFirst(),
  ]);
  if (eip || rule)
    throw new CloudError(
      'Conflict',
      'VIP_IN_USE',
      `vip ${vipUuid} is used by ${eip ? `eip ${eip.uuid}` : `port-forwarding rule ${rule!.uuid}`}; delete it first`,
      { details: { eipUuid: eip?.uuid, portForwardingRuleUuid: rule?.uuid } },
    );
}

const deleteVipFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'vip.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-record',
      describe: 'delete the vip and release its address',
      async run(ctx) {
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const vip = await tx
            .selectFrom('vips')
            .select(['uuid', 'accountUuid'])
            .where('uuid', '=', ctx.params.uuid)
            .forUpdate()
            .executeTakeFirst();
          if (!vip) return; // already gone: deleting is idempotent
          await assertVipFree(tx, vip.uuid);
          await tx.deleteFrom('vips').where('uuid', '=', vip.uuid).execute();
          await releaseIps(tx, { ownerUuid: vip.uuid });
          await tx.deleteFrom('tags').where('resourceUuid', '=', vip.uuid).execute();
          batch.add({ ...resourceEvent(vipFamily, vip, 'deleted'), jobUuid: ctx.job.uuid });
        });
      },
    },
  ],
};

export function vipService(ctx: ServiceContext): KindService {
  ctx.engine.register({
    kind: 'vip.create',
    recovery: 'resume',
    steps: [createRecord],
    result: (c) => readRow(c.db, 'vips', c.job.resourceUuid!),
  });
  ctx.engine.register(changeFlow(vipFamily, 'vip.update', 'updated'));
  ctx.engine.register(deleteVipFlow);
  const load = (caller: Caller, uuid: string) => loadVisible(ctx, vipSchema, uuid, caller);

  const update: Operation = async (caller, uuid, body) =>
    submitFor(ctx, vipFamily, caller, await load(caller, uuid), 'vip.update', { changes: body });

  return {
    contract,
    schema: vipSchema,
    update,
    async create(caller, body) {
      const uuid = newId();
      const l3Uuid = body.l3NetworkUuid as string;
      const base = {
        uuid,
        name: body.name as string,
        description: (body.description as string | undefined) ?? null,
        accountUuid: caller.accountUuid,
      };
      return admitCreate(ctx, vipFamily, caller, base, body, {
        skipInsert: true,
        async check(tx) {
          await usablePublicL3(tx, caller, l3Uuid);
          const ip = await allocateIp(tx, {
            l3NetworkUuid: l3Uuid,
            accountUuid: caller.accountUuid,
            usedFor: 'vip',
            ownerUuid: uuid,
            ...(body.ip ? { ip: body.ip as string } : {}),
          });
          await tx
            .insertInto('vips')
            .values({ ...base, l3NetworkUuid: l3Uuid, ip: ip.ip, ipAddressUuid: ip.uuid })
            .execute();
        },
      });
    },
    async remove(caller, uuid) {
      const vip = await load(caller, uuid);
      await assertVipFree(ctx.db, uuid); // answered at once; the flow checks again under the lock
      return submitFor(ctx, vipFamily, caller, vip, 'vip.delete');
    },
  };
}
