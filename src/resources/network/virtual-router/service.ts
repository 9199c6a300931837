/**
 * Virtual routers as an API kind: made on demand by the first VM of their L3 (ensure.ts), never
 * created through the API. Visible to the owner of the L3 (the router's account) and the admin.
 *
 *   virtual-router.reconnect  check-status (router.status) → apply-config (whole configuration)
 *   virtual-router.reboot     reboot-appliance (vm.reboot: it comes back with no configuration)
 *                             → apply-config
 *   virtual-router.delete     mark-destroying (rollback: back to what it was, or Error when its
 *                             appliance is gone) → remove-appliance (destroy + expunge the VM)
 *                             → delete-record. The next VM on the L3 makes a new router.
 * Its periodic pass (settle.ts) settles routers whose appliance job finished unobserved and keeps
 * the rows' Running/Stopped in step with their appliances.
 */
import { virtualRouters as contract } from '../../../contract/network.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, notFound } from '../../../kernel/errors.js';
import { type Family, loadVisible, readRow, resourceEvent, submitFor } from '../../common.js';
import { addressOf } from '../../compute/vm/placement.js';
import type { FlowDeps, KindService, ServiceContext } from '../../service.js';
import { settleRouters } from './settle.js';
import { syncRouters } from './sync.js';

export const routerFamily: Family = {
  singular: 'virtual-router',
  kind: 'virtual-routers',
  table: 'virtualRouters',
};

export const routerSchema: KindSchema = {
  kind: 'virtual-routers',
  table: 'virtualRouters',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    l3NetworkUuid: 'uuid',
    offeringUuid: 'uuid',
    vmUuid: 'uuid',
    publicIp: 'string',
    guestIp: 'string',
    managementIp: 'string',
    state: { enum: ['Creating', 'Running', 'Stopped', 'Error', 'Destroying'] },
    status: { enum: ['Connecting', 'Connected', 'Disconnected'] },
    configVersion: 'int',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    l3Network: { kind: 'l3-networks', local: 'l3NetworkUuid', remote: 'uuid' },
    offering: { kind: 'virtual-router-offerings', local: 'offeringUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/** the API shape: the configuration version as a number (bigint columns come back as text) */
export function presentRouter(row: Record<string, unknown> | undefined): unknown {
  if (!row) return row;
  const { jobUuid: _job, claimJobUuid: _claim, ...rest } = row;
  return { ...rest, configVersion: Number(row.configVersion ?? 0) };
}

type Ctx = StepContext<{ uuid: string }, FlowDeps>;

async function routerOf(ctx: Ctx) {
  const row = await ctx.db
    .selectFrom('virtualRouters as r')
    .leftJoin('vms as v', 'v.uuid', 'r.vmUuid')
    .select(['r.uuid', 'r.state', 'r.vmUuid', 'r.accountUuid', 'v.hostUuid'])
    .where('r.uuid', '=', ctx.params.uuid)
    .executeTakeFirst();
  if (!row) throw notFound('virtual-router', ctx.params.uuid);
  return row;
}

async function applianceHost(ctx: Ctx) {
  const r = await routerOf(ctx);
  if (r.state !== 'Running' || !r.vmUuid || !r.hostUuid)
    throw new CloudError(
      'Conflict',
      'VIRTUAL_ROUTER_INVALID_STATE',
      `virtual router ${r.uuid} is ${r.state}`,
      {
        details: { state: r.state },
      },
    );
  return { router: r, host: await addressOf(ctx.db, r.hostUuid) };
}

const applyConfig: FlowStep<{ uuid: string }, FlowDeps> = {
  name: 'apply-config',
  describe: 'send the router its whole configuration',
  async run(ctx) {
    await syncRouters(ctx.db, ctx.deps, [ctx.params.uuid]);
  },
};

const result = (ctx: Ctx) => readRow(ctx.db, 'virtualRouters', ctx.params.uuid).then(presentRouter);

const reconnectFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'virtual-router.reconnect',
  recovery: 'resume',
  steps: [
    {
      name: 'check-status',
      describe: 'ask the router which configuration it runs',
      async run(ctx) {
        const { router, host } = await applianceHost(ctx);
        try {
          const status = await ctx.deps.drivers.send(host, 'router.status', { routerUuid: router.uuid });
          ctx.data.runningVersion = status.version;
        } catch (err) {
          await ctx.db
            .updateTable('virtualRouters')
            .set({ status: 'Disconnected', updatedAt: new Date() })
            .where('uuid', '=', router.uuid)
            .execute();
          throw err;
        }
      },
    },
    applyConfig,
  ],
  result,
};

const rebootFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'virtual-router.reboot',
  recovery: 'resume',
  steps: [
    {
      name: 'reboot-appliance',
      describe: 'reboot the router appliance',
      async run(ctx) {
        const { router, host } = await applianceHost(ctx);
        await ctx.deps.drivers.send(host, 'vm.reboot', { vmUuid: router.vmUuid! });
      },
    },
    applyConfig,
  ],
  result,
};

const deleteFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'virtual-router.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'mark-destroying',
      describe: 'mark the router Destroying',
      async run(ctx) {
        const r = await ctx.db
          .selectFrom('virtualRouters')
          .select(['state'])
          .where('uuid', '=', ctx.params.uuid)
          .executeTakeFirst();
        if (!r) return;
        if (!('fromState' in ctx.data)) ctx.data.fromState = r.state;
        await ctx.db
          .updateTable('virtualRouters')
          .set({ state: 'Destroying', updatedAt: new Date() })
          .where('uuid', '=', ctx.params.uuid)
          .execute();
      },
      async rollback(ctx) {
        const from = ctx.data.fromState as string | undefined;
        if (!from) return;
        const r = await routerOf(ctx).catch(() => undefined);
        if (!r) return;
        const vm = r.vmUuid
          ? await ctx.db.selectFrom('vms').select('state').where('uuid', '=', r.vmUuid).executeTakeFirst()
          : undefined;
        // an appliance destroyed half-way serves nothing: Error lets the next VM replace it
        const state = (from === 'Running' || from === 'Stopped') && vm?.state !== from ? 'Error' : from;
        await ctx.db
          .updateTable('virtualRouters')
          .set({ state, updatedAt: new Date() })
          .where('uuid', '=', ctx.params.uuid)
          .where('state', '=', 'Destroying')
          .execute();
      },
    },
    {
      name: 'remove-appliance',
      describe: 'destroy and expunge the appliance VM',
      async run(ctx) {
        const r = await routerOf(ctx).catch(() => undefined);
        if (r?.vmUuid && !ctx.data.vmUuid) ctx.data.vmUuid = r.vmUuid;
        const vmUuid = ctx.data.vmUuid as string | undefined;
        if (!vmUuid) return;
        const remove = ctx.deps.removeApplianceVm;
        if (!remove)
          throw new CloudError('Internal', 'APPLIANCE_VM_FAILED', 'this node cannot remove appliance VMs');
        // the router stops naming the VM first: its row must not block the expunge (foreign key)
        await ctx.db
          .updateTable('virtualRouters')
          .set({ vmUuid: null, updatedAt: new Date() })
          .where('uuid', '=', ctx.params.uuid)
          .execute();
        await (ctx.idle ? ctx.idle(() => remove(vmUuid)) : remove(vmUuid));
      },
    },
    {
      name: 'delete-record',
      describe: 'delete the router',
      async run(ctx) {
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const row = await tx
            .deleteFrom('virtualRouters')
            .where('uuid', '=', ctx.params.uuid)
            .returning(['uuid', 'accountUuid'])
            .executeTakeFirst();
          if (!row) return;
          await tx.deleteFrom('tags').where('resourceUuid', '=', row.uuid).execute();
          batch.add({ ...resourceEvent(routerFamily, row, 'deleted'), jobUuid: ctx.job.uuid });
        });
      },
    },
  ],
};

/** the router service: its kind's operations, plus its periodic pass (settle.ts) */
export interface RouterService extends KindService {
  /** one settle pass (the timer's work; tests call it directly) */
  settle(): Promise<number>;
}

export function routerService(ctx: ServiceContext): RouterService {
  for (const flow of [reconnectFlow, rebootFlow, deleteFlow]) ctx.engine.register(flow);
  const load = (caller: Caller, uuid: string) => loadVisible(ctx, routerSchema, uuid, caller);
  const needs = async (caller: Caller, uuid: string, states: string[], what: string) => {
    const row = await load(caller, uuid);
    if (!states.includes(row.state as string))
      throw new CloudError(
        'Conflict',
        'VIRTUAL_ROUTER_INVALID_STATE',
        `virtual router ${uuid} is ${row.state}; ${what} needs ${states.join(' or ')}`,
        { details: { state: row.state } },
      );
    return row;
  };
  const settle = () => settleRouters(ctx.db, ctx.deps, ctx.engine.nodeId);
  let task: PeriodicTask | undefined;
  return {
    contract,
    schema: routerSchema,
    present: presentRouter,
    settle,
    start() {
      const onError = (err: unknown) => ctx.deps.log.warn({ err }, 'virtual router settle pass failed');
      task ??= new PeriodicTask(ctx.deps.settings.reconcileIntervalSeconds * 1000, settle, onError).start();
    },
    async stop() {
      await task?.stop();
      task = undefined;
    },
    async remove(caller, uuid) {
      const row = await needs(caller, uuid, ['Running', 'Stopped', 'Error'], 'delete');
      return submitFor(ctx, routerFamily, caller, row, 'virtual-router.delete');
    },
    actions: {
      reconnect: async (caller, uuid) =>
        submitFor(
          ctx,
          routerFamily,
          caller,
          await needs(caller, uuid, ['Running'], 'reconnect'),
          'virtual-router.reconnect',
        ),
      reboot: async (caller, uuid) =>
        submitFor(
          ctx,
          routerFamily,
          caller,
          await needs(caller, uuid, ['Running'], 'reboot'),
          'virtual-router.reboot',
        ),
    },
  };
}
