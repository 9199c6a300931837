/**
 * What EIPs and port-forwarding rules share: both map a VIP onto a VM NIC of the same account on
 * a virtual-router L3 (docs/network.md "VIPs, EIPs, port forwarding"), and every change of such
 * a mapping re-sends the whole configuration of the routers involved.
 *
 * Chains (`<s>` = eip | port-forwarding-rule):
 *   <s>.create   create-record (at admission: the row and the VIP's used_for; rollback deletes
 *                the row, frees the VIP if nothing else uses it, re-syncs the router)
 *                → apply-router-config
 *   <s>.attach   set-nic (rollback: the previous NIC back, re-sync) → apply-router-config
 *   <s>.detach   the same chain with no NIC
 *   <s>.delete   set-nic (to none) → apply-router-config → delete-record (frees the VIP)
 * apply-router-config has no rollback of its own: the step before it restores the database and
 * re-syncs, and a router's configuration is only ever what the database says.
 */
import { isForeignKeyViolation } from '../../../db/errors.js';
import type { Executor, Tx } from '../../../db/transaction.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError, missingReference, notFound } from '../../../kernel/errors.js';
import { type Family, resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';
import { l3sOfNics, syncRoutersOfL3s } from '../virtual-router/sync.js';

export type BindingTable = 'eips' | 'portForwardingRules';

export interface BindingFamily extends Family {
  table: BindingTable;
  /** error code of a NIC whose L3 has no virtual router */
  notRoutedCode: string;
  /** maps a failed NIC update (e.g. one EIP per NIC) to a clear error */
  mapNicError?: (err: unknown, nicUuid: string) => unknown;
  /** the API shape of a row, as the job result */
  result(db: Executor, uuid: string): Promise<unknown>;
}

export interface NicParams {
  uuid: string;
  vmNicUuid: string | null;
}

/**
 * A NIC an EIP or rule of `accountUuid` may map onto: it exists and is that account's (another
 * account's NIC is "not found", never "forbidden"), and its L3 is served by a virtual router.
 */
export async function routedNic(
  db: Executor,
  accountUuid: string,
  nicUuid: string,
  notRoutedCode: string,
): Promise<{ uuid: string; l3NetworkUuid: string; ip: string | null }> {
  const nic = await db
    .selectFrom('vmNics as n')
    .innerJoin('l3Networks as l', 'l.uuid', 'n.l3NetworkUuid')
    .select(['n.uuid', 'n.l3NetworkUuid', 'n.ip', 'n.accountUuid', 'l.provider'])
    .where('n.uuid', '=', nicUuid)
    .executeTakeFirst();
  if (!nic || nic.accountUuid !== accountUuid) throw missingReference('vmNicUuid', 'vm-nic', nicUuid);
  if (nic.provider !== 'virtual-router')
    throw new CloudError(
      'Invalid',
      notRoutedCode,
      `NIC ${nicUuid} is on L3 network ${nic.l3NetworkUuid}, whose provider is ${nic.provider ?? 'none'}; only virtual-router networks serve VIPs`,
      { details: { vmNicUuid: nicUuid, l3NetworkUuid: nic.l3NetworkUuid, provider: nic.provider } },
    );
  return { uuid: nic.uuid, l3NetworkUuid: nic.l3NetworkUuid, ip: nic.ip };
}

/** Frees the VIP for another kind of service once no EIP and no rule uses it. */
export async function releaseVipIfUnused(tx: Tx, vipUuid: string): Promise<void> {
  await tx
    .updateTable('vips')
    .set({ usedFor: null, updatedAt: new Date() })
    .where('uuid', '=', vipUuid)
    .where((eb) =>
      eb.and([
        eb.not(eb.exists(eb.selectFrom('eips').select('uuid').where('vipUuid', '=', vipUuid))),
        eb.not(eb.exists(eb.selectFrom('portForwardingRules').select('uuid').where('vipUuid', '=', vipUuid))),
      ]),
    )
    .execute();
}

/** Takes the VIP for `usedFor`, or throws VIP_IN_USE naming what holds it. Locks the VIP row. */
export async function takeVip(
  tx: Tx,
  vipUuid: string,
  usedFor: 'eip' | 'port-forwarding',
): Promise<{ uuid: string; ip: string; accountUuid: string }> {
  const vip = await tx
    .selectFrom('vips')
    .select(['uuid', 'ip', 'accountUuid', 'usedFor'])
    .where('uuid', '=', vipUuid)
    .forUpdate()
    .executeTakeFirst();
  if (!vip) throw missingReference('vipUuid', 'vip', vipUuid);
  // one EIP per VIP (eips_vip_key backs it); any number of rules
  if ((vip.usedFor !== null && vip.usedFor !== usedFor) || (usedFor === 'eip' && vip.usedFor === 'eip'))
    throw new CloudError('Conflict', 'VIP_IN_USE', `vip ${vipUuid} is already used for ${vip.usedFor}`, {
      details: { vipUuid, usedFor: vip.usedFor },
    });
  if (vip.usedFor === null)
    await tx
      .updateTable('vips')
      .set({ usedFor, updatedAt: new Date() })
      .where('uuid', '=', vipUuid)
      .execute();
  return vip;
}

type Ctx = StepContext<NicParams, FlowDeps>;

/** the NIC a row maps onto now */
async function currentNic(ctx: Ctx, table: BindingTable, uuid: string): Promise<string | null | undefined> {
  const row = await ctx.db.selectFrom(table).select('vmNicUuid').where('uuid', '=', uuid).executeTakeFirst();
  return row ? row.vmNicUuid : undefined;
}

async function setNic(ctx: Ctx, f: BindingFamily, uuid: string, nicUuid: string | null, event: string) {
  try {
    await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
      const row = await tx
        .updateTable(f.table)
        .set({ vmNicUuid: nicUuid, updatedAt: new Date() })
        .where('uuid', '=', uuid)
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      if (!row) throw notFound(f.singular, uuid);
      batch.add({ ...resourceEvent(f, row, event, { vmNicUuid: nicUuid }), jobUuid: ctx.job.uuid });
    });
  } catch (err) {
    if (nicUuid && isForeignKeyViolation(err)) throw missingReference('vmNicUuid', 'vm-nic', nicUuid);
    throw f.mapNicError && nicUuid ? f.mapNicError(err, nicUuid) : err;
  }
}

/** Points the row at `params.vmNicUuid`; the rollback points it back and re-syncs. */
function setNicStep(f: BindingFamily): FlowStep<NicParams, FlowDeps> {
  return {
    name: 'set-nic',
    describe: `map the ${f.singular} onto its NIC`,
    async run(ctx) {
      const now = await currentNic(ctx, f.table, ctx.params.uuid);
      if (now === undefined) throw notFound(f.singular, ctx.params.uuid);
      // a resumed run keeps what was there before the first run
      if (!('previousNic' in ctx.data)) ctx.data.previousNic = now;
      if (now === ctx.params.vmNicUuid) return;
      await setNic(
        ctx,
        f,
        ctx.params.uuid,
        ctx.params.vmNicUuid,
        ctx.params.vmNicUuid ? 'attached' : 'detached',
      );
    },
    async rollback(ctx) {
      if (!('previousNic' in ctx.data)) return; // the run never read anything: nothing changed
      const previous = ctx.data.previousNic as string | null;
      const now = await currentNic(ctx, f.table, ctx.params.uuid);
      if (now !== undefined && now !== previous)
        await setNic(ctx, f, ctx.params.uuid, previous, previous ? 'attached' : 'detached');
      await syncRoutersOfL3s(ctx.db, ctx.deps, await l3sOfNics(ctx.db, [previous, ctx.params.vmNicUuid]));
    },
  };
}

function applyRouterConfigStep(f: BindingFamily): FlowStep<NicParams, FlowDeps> {
  return {
    name: 'apply-router-config',
    describe: `send the routers involved their configuration with the ${f.singular}`,
    async run(ctx) {
      const previous = ctx.data.previousNic as string | null | undefined;
      await syncRoutersOfL3s(ctx.db, ctx.deps, await l3sOfNics(ctx.db, [previous, ctx.params.vmNicUuid]));
    },
  };
}

export function bindingFlows(f: BindingFamily): FlowDef<NicParams, FlowDeps>[] {
  const s = f.singular;
  const result = (ctx: Ctx) => f.result(ctx.db, ctx.params.uuid);
  const createRecord: FlowStep<NicParams, FlowDeps> = {
    name: 'create-record',
    describe: `record the ${s}`,
    async run() {},
    async rollback(ctx) {
      const uuid = ctx.job.resourceUuid!;
      await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
        const row = await tx
          .deleteFrom(f.table)
          .where('uuid', '=', uuid)
          .returning(['uuid', 'accountUuid', 'vipUuid'])
          .executeTakeFirst();
        if (!row) return;
        await releaseVipIfUnused(tx, row.vipUuid);
        await tx.deleteFrom('tags').where('resourceUuid', '=', uuid).execute();
        batch.add({ ...resourceEvent(f, row, 'deleted', { reason: 'rolled back' }), jobUuid: ctx.job.uuid });
      });
      await syncRoutersOfL3s(ctx.db, ctx.deps, await l3sOfNics(ctx.db, [ctx.params.vmNicUuid]));
    },
  };
  const deleteRecord: FlowStep<NicParams, FlowDeps> = {
    name: 'delete-record',
    describe: `delete the ${s} and free its VIP when nothing else uses it`,
    async run(ctx) {
      await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
        const row = await tx
          .selectFrom(f.table)
          .select(['uuid', 'accountUuid', 'vipUuid'])
          .where('uuid', '=', ctx.params.uuid)
          .executeTakeFirst();
        if (!row) return; // already gone: deleting is idempotent
        // the VIP's lock first, as admissions take it: a concurrent rule create waits for us
        await tx.selectFrom('vips').select('uuid').where('uuid', '=', row.vipUuid).forUpdate().execute();
        await tx.deleteFrom(f.table).where('uuid', '=', row.uuid).execute();
        await releaseVipIfUnused(tx, row.vipUuid);
        await tx.deleteFrom('tags').where('resourceUuid', '=', row.uuid).execute();
        batch.add({ ...resourceEvent(f, row, 'deleted'), jobUuid: ctx.job.uuid });
      });
    },
  };
  return [
    {
      kind: `${s}.create`,
      recovery: 'resume',
      steps: [createRecord, applyRouterConfigStep(f)],
      result,
    },
    { kind: `${s}.attach`, recovery: 'resume', steps: [setNicStep(f), applyRouterConfigStep(f)], result },
    { kind: `${s}.detach`, recovery: 'resume', steps: [setNicStep(f), applyRouterConfigStep(f)], result },
    {
      kind: `${s}.delete`,
      recovery: 'resume',
      steps: [setNicStep(f), applyRouterConfigStep(f), deleteRecord],
    },
  ];
}
