/**
 * Leases as the API sees them: listed and read by their holders (the admin sees all), renewed
 * (up to the pool's limits; a Stopped one starts its VM again) and released (the VM goes back to
 * the pool). Leases are made only by a pool's allocate (allocate.ts). The node's lease clock runs
 * here (scan.ts).
 */
import { leases as contract } from '../../../contract/self-service.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { JobRow } from '../../../engine/jobs.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, conflict, invalid } from '../../../kernel/errors.js';
import { loadVisible, queueKey, resourceEvent } from '../../common.js';
import { runSystemVmOperation } from '../../compute/vm/system-ops.js';
import type { FlowDeps, KindService, Operation, ServiceContext } from '../../service.js';
import { leaseAllocateFlow } from './allocate.js';
import { endLease } from './end.js';
import { syncAfterLeaseEnded } from './floating-ip.js';
import { leaseFamily, leaseSchema, leaseWithVm } from './model.js';
import { type ScanResult, scanLeases } from './scan.js';

interface RenewParams {
  /** the lease was Stopped: its VM starts again */
  restart: boolean;
  vmUuid: string | null;
}

export class LeaseService implements KindService {
  readonly contract = contract;
  readonly schema = leaseSchema;
  readonly actions: Record<string, Operation>;
  private task: PeriodicTask | undefined;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(leaseAllocateFlow(ctx));
    ctx.engine.register(this.renewFlow());
    ctx.engine.register({
      kind: 'lease.release',
      recovery: 'resume',
      steps: [
        { name: 'end', async run() {} },
        {
          name: 'release-floating-ip',
          describe: 'tell the router the floating IP is gone',
          run: (c) => syncAfterLeaseEnded(ctx.db, ctx.deps, c.job.resourceUuid!),
        },
      ],
      result: (c) => leaseWithVm(ctx.db, c.job.resourceUuid!),
    });
    this.actions = {
      renew: (caller, uuid, body) => this.renew(caller, uuid, body),
      release: (caller, uuid) => this.release(caller, uuid),
    };
  }

  start(): void {
    this.task = new PeriodicTask(
      this.ctx.deps.settings.leaseScanIntervalSeconds * 1000,
      () => this.scan(),
      (err) => this.ctx.deps.log.warn({ err }, 'lease scan failed'),
    ).start();
  }

  async stop(): Promise<void> {
    await this.task?.stop();
  }

  /** One pass of the lease clock (tests pass a `now` of their choosing). */
  scan(now = new Date(), allNodes = false): Promise<ScanResult> {
    return scanLeases(this.ctx, now, allNodes);
  }

  private async renew(caller: Caller, uuid: string, body: Record<string, unknown>): Promise<JobRow> {
    const lease = await loadVisible(this.ctx, leaseSchema, uuid, caller);
    const pool = await this.ctx.db
      .selectFrom('pools')
      .selectAll()
      .where('uuid', '=', lease.poolUuid as string)
      .executeTakeFirstOrThrow();
    const seconds = (body.leaseSeconds as number | undefined) ?? pool.defaultLeaseSeconds;
    if (seconds > pool.maxLeaseSeconds)
      throw invalid(
        [{ field: 'leaseSeconds', problem: `at most ${pool.maxLeaseSeconds} s (the pool's longest lease)` }],
        'LEASE_TOO_LONG',
      );
    const job = await this.ctx.events.inTransaction(this.ctx.db, async (tx, batch) => {
      // the row decides, under its lock: a renewal racing the clock or another renewal sees the other's result
      const row = await tx
        .selectFrom('leases')
        .selectAll()
        .where('uuid', '=', uuid)
        .forUpdate()
        .executeTakeFirstOrThrow();
      if (row.state !== 'Active' && row.state !== 'Stopped')
        throw conflict(
          'LEASE_NOT_LIVE',
          `lease ${uuid} is ${row.state}: only an Active or Stopped lease is renewed`,
          {
            state: row.state,
          },
        );
      if (row.renewals >= pool.maxRenewals)
        throw conflict(
          'LEASE_RENEWAL_LIMIT',
          `lease ${uuid} was renewed ${row.renewals} times, the pool's limit`,
          {
            renewals: row.renewals,
            limit: pool.maxRenewals,
          },
        );
      const now = new Date();
      await tx
        .updateTable('leases')
        .set({
          state: 'Active',
          expiresAt: new Date(now.getTime() + seconds * 1000),
          renewals: row.renewals + 1,
          notifiedAt: null,
          deleteAfter: null,
          updatedAt: now,
        })
        .where('uuid', '=', uuid)
        .execute();
      batch.add(resourceEvent(leaseFamily, row, 'renewed', { renewals: row.renewals + 1, seconds }));
      const params: RenewParams = { restart: row.state === 'Stopped', vmUuid: row.vmUuid };
      return this.ctx.engine.submit(
        tx,
        {
          kind: 'lease.renew',
          params: params as unknown as Record<string, unknown>,
          accountUuid: lease.accountUuid,
          userUuid: caller.userUuid,
          resourceKind: leaseFamily.kind,
          resourceUuid: uuid,
          queueKey: queueKey(leaseFamily, uuid),
          requestId: caller.requestId,
          done: ['extend'],
        },
        batch,
      );
    });
    this.ctx.engine.start(job.uuid, job.queueKey);
    return job;
  }

  private renewFlow(): FlowDef<RenewParams, FlowDeps> {
    const ctx = this.ctx;
    return {
      kind: 'lease.renew',
      recovery: 'resume',
      steps: [
        { name: 'extend', async run() {} },
        {
          name: 'start-vm',
          describe: 'start the VM again',
          async run(c) {
            if (c.params.restart && c.params.vmUuid)
              await runSystemVmOperation(ctx, c.params.vmUuid, 'start', `lease-renew-${c.job.resourceUuid}`);
          },
        },
      ],
      result: (c) => leaseWithVm(ctx.db, c.job.resourceUuid!),
    };
  }

  private async release(caller: Caller, uuid: string): Promise<JobRow> {
    const lease = await loadVisible(this.ctx, leaseSchema, uuid, caller);
    return this.ctx.engine.submitAndStart(
      {
        kind: 'lease.release',
        accountUuid: lease.accountUuid,
        userUuid: caller.userUuid,
        resourceKind: leaseFamily.kind,
        resourceUuid: uuid,
        queueKey: queueKey(leaseFamily, uuid),
        requestId: caller.requestId,
        done: ['end'],
      },
      async (tx, batch) => {
        if (!(await endLease(tx, batch, uuid, 'released')))
          throw new CloudError(
            'Conflict',
            'LEASE_NOT_LIVE',
            `lease ${uuid} is ${lease.state}: only an Active or Stopped lease is released`,
            {
              details: { state: lease.state },
            },
          );
      },
    );
  }
}
