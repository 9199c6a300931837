/**
 * VMs as the API sees them: create (admission.ts + create-flow.ts), update, destroy (DELETE) and
 * the actions, each admitted through the transition table (transitions.ts) and run as a chain in
 * the VM's queue; plus the node's periodic work for VMs: the reconciler and the reaper.
 */

import type { FastifyInstance } from 'fastify';
import { vms as contract } from '../../../contract/compute.js';
import type { Tx } from '../../../db/transaction.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, forbidden, invalid } from '../../../kernel/errors.js';
import { canRun, refusal, type VmOperation, type VmState } from '../../../kernel/vm-states.js';
import { changeFlow, loadVisible, readRow, submitFor } from '../../common.js';
import { accountOf, reserveQuota } from '../../identity/quota/quota.js';
import type { ApplianceVmInput, FlowDeps, KindService, Operation, ServiceContext } from '../../service.js';
import { admitApplianceCreate, admitPoolVmCreate, admitVmCreate, type VmCreateBody } from './admission.js';
import { CandidateSnapshot } from './candidates.js';
import { vmCreateFlow } from './create-flow.js';
import { vmDestroyFlow, vmExpungeFlow, vmRecoverFlow } from './destroy.js';
import { haTriggers } from './ha-triggers.js';
import {
  type ChangeOfferingParams,
  quotaDelta,
  vmChangeOfferingFlow,
  vmPauseFlow,
  vmRebootFlow,
  vmResumeFlow,
  vmStartFlow,
  vmStopFlow,
} from './lifecycle.js';
import { migrationRefusal, vmMigrateFlow } from './migrate.js';
import { presentVm, vmFamily, vmSchema } from './model.js';
import { submitOperation, type VmRef } from './operations.js';
import { reapDestroyedVms } from './reaper.js';
import { rebuildParams, vmRebuildFlow } from './rebuild.js';
import { Reconciler } from './reconciler.js';
import type { VmRuntime } from './runtime.js';
import { registerSerialLogRoute } from './serial-log.js';
import { vmRow } from './transitions.js';

/** the share of the time reconciliation may take: passes over many hosts come less often */
const RECONCILE_SHARE = 0.1;

/** images whose candidate views are built before the node reports ready */
const WARM_IMAGES = 10;

export class VmService implements KindService {
  readonly contract = contract;
  readonly schema = vmSchema;
  readonly actions: Record<string, Operation>;
  readonly runtime: VmRuntime;
  readonly reconciler: Reconciler;
  private tasks: PeriodicTask[] = [];

  private readonly deps: FlowDeps;

  constructor(private readonly ctx: ServiceContext) {
    this.deps = ctx.deps;
    this.runtime = { snapshot: new CandidateSnapshot(ctx.db) };
    const rt = this.runtime;
    for (const flow of [
      vmStartFlow(rt),
      vmRebootFlow(rt),
      vmPauseFlow(rt),
      vmResumeFlow(rt),
      vmDestroyFlow(rt),
    ])
      ctx.engine.register(flow);
    ctx.engine.register(vmCreateFlow(rt));
    ctx.engine.register(vmStopFlow(rt));
    ctx.engine.register(vmMigrateFlow(rt));
    ctx.engine.register(vmChangeOfferingFlow);
    ctx.engine.register(vmRecoverFlow);
    ctx.engine.register(vmExpungeFlow);
    ctx.engine.register(vmRebuildFlow);
    ctx.engine.register({
      ...changeFlow(vmFamily, 'vm.update', 'updated'),
      result: (c) => readRow(c.db, 'vms', c.params.uuid).then(presentVm),
    });
    this.reconciler = new Reconciler(ctx.db, ctx.deps, rt, ctx.engine.nodeId, haTriggers(ctx));

    const simple =
      (op: VmOperation, params?: (body: Record<string, unknown>) => Record<string, unknown>): Operation =>
      async (caller, uuid, body) =>
        submitOperation(ctx, caller, await this.load(caller, uuid), op, params?.(body));
    this.actions = {
      start: simple('start'),
      stop: simple('stop', (b) => ({ force: b.force === true })),
      reboot: simple('reboot'),
      pause: simple('pause'),
      resume: simple('resume'),
      recover: async (caller, uuid) => {
        const vm = await this.load(caller, uuid);
        await this.assertRootVolume(vm.uuid);
        return submitOperation(ctx, caller, vm, 'recover');
      },
      expunge: simple('expunge'),
      'change-offering': (caller, uuid, body) => this.changeOffering(caller, uuid, body),
      migrate: (caller, uuid, body) => this.migrate(caller, uuid, body),
      rebuild: async (caller, uuid) => {
        const vm = await this.load(caller, uuid);
        return submitOperation(ctx, caller, vm, 'rebuild', await rebuildParams(ctx.db, uuid));
      },
    };
  }

  /** `GET /v1/vms/{uuid}/serial-log` (serial-log.ts) */
  routes(app: FastifyInstance): void {
    registerSerialLogRoute(app, this.ctx);
  }

  create(caller: Caller, body: Record<string, unknown>) {
    return admitVmCreate(this.ctx, caller, body as unknown as VmCreateBody);
  }

  /**
   * An ordinary create with `alsoInTx` run in the admitting transaction: what another API records
   * with the VM (the OpenStack façade's key name, metadata and user-data) commits with it or not at all.
   */
  createWith(
    caller: Caller,
    body: Record<string, unknown>,
    alsoInTx: (tx: Tx, vmUuid: string) => Promise<void>,
  ) {
    return admitPoolVmCreate(this.ctx, caller, body as unknown as VmCreateBody, alsoInTx);
  }

  /**
   * A virtual router's appliance VM (virtual-router/appliance.ts): the normal create chain, by
   * the admin account (no quota), marked as the router's appliance so that its own chain makes
   * no router; the first NIC is the default one.
   */
  async createAppliance(input: ApplianceVmInput): Promise<{ vmUuid: string; jobUuid: string }> {
    const admin = await this.ctx.db
      .selectFrom('accounts as a')
      .innerJoin('users as u', 'u.accountUuid', 'a.uuid')
      .select(['a.uuid as accountUuid', 'u.uuid as userUuid'])
      .where('a.type', '=', 'admin')
      .orderBy('u.createdAt')
      .limit(1)
      .executeTakeFirstOrThrow();
    const job = await admitApplianceCreate(
      this.ctx,
      { ...admin, isAdmin: true, requestId: `router-${input.routerUuid}` },
      input,
    );
    return { vmUuid: job.resourceUuid!, jobUuid: job.uuid };
  }

  // a property, not a method: the routes call it unbound
  readonly update: Operation = async (caller, uuid, body) =>
    submitFor(this.ctx, vmFamily, caller, await this.load(caller, uuid), 'vm.update', { changes: body });

  /** DELETE destroys (soft): the VM stays, Destroyed and recoverable, until it is expunged. */
  async remove(caller: Caller, uuid: string) {
    return submitOperation(this.ctx, caller, await this.load(caller, uuid), 'destroy');
  }

  /** Starts the reconciler and the reaper (passes never overlap; timers never keep the process alive). */
  start(): void {
    const s = this.deps.settings;
    const onError = (err: unknown) => this.deps.log.warn({ err }, 'periodic vm task failed');
    this.tasks = [
      new PeriodicTask(
        s.reconcileIntervalSeconds * 1000,
        () => this.reconciler.reconcileAll(),
        onError,
        RECONCILE_SHARE,
      ).start(),
      new PeriodicTask(s.reaperIntervalSeconds * 1000, () => this.reap(), onError).start(),
    ];
  }

  /** The candidate hosts, with the views of the most recent usable images, before the first create. */
  async warm(): Promise<void> {
    const images = await this.ctx.db
      .selectFrom('images')
      .select('uuid')
      .where('state', '=', 'Ready')
      .orderBy('createdAt', 'desc')
      .limit(WARM_IMAGES)
      .execute();
    await this.runtime.snapshot.warm(images.map((i) => i.uuid));
  }

  async stop(): Promise<void> {
    await Promise.all(this.tasks.splice(0).map((t) => t.stop()));
  }

  /** One reaper pass (the timer's work; tests call it directly). */
  reap(): Promise<number> {
    return reapDestroyedVms(this.ctx, this.deps.settings, this.deps.log);
  }

  private async load(caller: Caller, uuid: string): Promise<VmRef> {
    const row = await loadVisible(this.ctx, vmSchema, uuid, caller);
    return {
      uuid: row.uuid,
      accountUuid: row.accountUuid,
      state: row.state as string,
      task: (row.task as string) ?? null,
    };
  }

  private async assertRootVolume(vmUuid: string): Promise<void> {
    const vm = await vmRow(this.ctx.db, vmUuid);
    const root = vm.rootVolumeUuid
      ? await this.ctx.db
          .selectFrom('volumes')
          .select('uuid')
          .where('uuid', '=', vm.rootVolumeUuid)
          .executeTakeFirst()
      : undefined;
    if (!root)
      throw new CloudError(
        'Conflict',
        'VM_ROOT_VOLUME_GONE',
        `vm ${vmUuid} cannot be recovered: its root volume is gone`,
      );
  }

  private async changeOffering(caller: Caller, uuid: string, body: Record<string, unknown>) {
    const ref = await this.load(caller, uuid);
    const vm = await vmRow(this.ctx.db, uuid);
    let cpu = body.cpu as number | undefined;
    let memory = body.memory as number | undefined;
    const offeringUuid = (body.instanceOfferingUuid as string | undefined) ?? null;
    if (offeringUuid) {
      if (cpu !== undefined || memory !== undefined)
        throw invalid([{ field: 'cpu', problem: 'give an instance offering or cpu and memory, not both' }]);
      const o = await this.ctx.db
        .selectFrom('instanceOfferings')
        .selectAll()
        .where('uuid', '=', offeringUuid)
        .executeTakeFirst();
      if (!o)
        throw invalid([{ field: 'instanceOfferingUuid', problem: `no instance offering ${offeringUuid}` }]);
      if (o.state !== 'Enabled')
        throw invalid([
          { field: 'instanceOfferingUuid', problem: `instance offering ${o.name} is ${o.state}` },
        ]);
      ({ cpu, memory } = o);
    } else if (cpu === undefined && memory === undefined) {
      throw invalid([
        { field: 'instanceOfferingUuid', problem: 'give an instance offering, or cpu and/or memory' },
      ]);
    }
    const params: Omit<ChangeOfferingParams, 'uuid' | 'fromState'> = {
      cpu: cpu ?? vm.cpu,
      memory: memory ?? vm.memory,
      instanceOfferingUuid: offeringUuid,
      oldCpu: vm.cpu,
      oldMemory: vm.memory,
    };
    const account = await accountOf(this.ctx.db, ref.accountUuid);
    // the increase is reserved with the admission, atomically: a refusal admits nothing
    return submitOperation(this.ctx, caller, ref, 'change-offering', { ...params }, (tx: Tx) =>
      reserveQuota(tx, account, quotaDelta(params, 1)),
    );
  }

  private async migrate(caller: Caller, uuid: string, body: Record<string, unknown>) {
    if (!caller.isAdmin) throw forbidden('only the admin may migrate a VM');
    const ref = await this.load(caller, uuid);
    // the state decides first, so every refusal of an illegal migrate names the state
    if (!canRun('migrate', ref.state as VmState, ref.task))
      throw refusal(ref.uuid, 'migrate', ref.state as VmState, ref.task);
    const target = body.hostUuid as string | undefined;
    const refused = await migrationRefusal(this.ctx.db, await vmRow(this.ctx.db, uuid), target);
    if (refused) throw refused;
    return submitOperation(this.ctx, caller, ref, 'migrate', target ? { hostUuid: target } : {});
  }
}
