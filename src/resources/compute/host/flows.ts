/**
 * Host chains. Adding a host: record (at admission; a kvm host's agent secret with it, in
 * host_secrets) → provision the simulated machine (simulator only) → connect (records the
 * accelerator and hypervisor version the host reports) → read capacity → mark Connected → re-sync
 * the hosts sharing its VXLAN networks (their peer lists). Reconnecting: mark Connecting →
 * connect → read capacity → sync its network → mark Connected → re-sync the peers; on failure
 * the host ends Disconnected.
 * Status moves only by conditional UPDATEs, so concurrent chains on one host cannot interleave
 * their transitions (the host queue allows 10 operations at once).
 */
import type { HostCapacity } from '../../../contract/agent.js';
import type { FlowDef, FlowStep, StepContext } from '../../../engine/flow.js';
import { CloudError } from '../../../kernel/errors.js';
import { createRecordStep, type Family, readRow, resourceEvent } from '../../common.js';
import { vxlanPeerHosts } from '../../network/host-sync.js';
import type { FlowDeps } from '../../service.js';
import { ensureLocalStorageShares } from '../../storage/primary-storage/shares.js';

export const hostFamily: Family = { singular: 'host', kind: 'hosts', table: 'hosts' };

export interface HostCreateParams {
  simulatorCpu?: number;
  simulatorMemory?: number;
}

type Ctx = StepContext<unknown, FlowDeps>;

async function hostOf(ctx: Ctx) {
  const host = await ctx.db
    .selectFrom('hosts')
    .selectAll()
    .where('uuid', '=', ctx.job.resourceUuid!)
    .executeTakeFirst();
  if (!host)
    throw new CloudError('NotFound', 'HOST_NOT_FOUND', `host ${ctx.job.resourceUuid} no longer exists`);
  return host;
}

async function setStatus(
  ctx: Ctx,
  to: 'Connecting' | 'Connected' | 'Disconnected',
  from?: string[],
): Promise<boolean> {
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    let q = tx
      .updateTable('hosts')
      .set({ status: to, updatedAt: new Date() })
      .where('uuid', '=', ctx.job.resourceUuid!);
    if (from) q = q.where('status', 'in', from as never[]);
    const row = await q.returning(['uuid', 'accountUuid']).executeTakeFirst();
    if (row)
      batch.add({
        ...resourceEvent(hostFamily, row, 'status.changed', { status: to }),
        jobUuid: ctx.job.uuid,
      });
    return row !== undefined;
  });
}

const connect: FlowStep<unknown, FlowDeps> = {
  name: 'connect',
  describe: 'connect to the host',
  async run(ctx) {
    const host = await hostOf(ctx);
    const facts = await ctx.deps.drivers.send(host, 'host.connect', {});
    ctx.data.facts = facts;
    // what the host runs guests with, as it says: shown on the host (kvm: KVM or TCG, QEMU version)
    await ctx.db
      .updateTable('hosts')
      .set({ accelerator: facts.accelerator ?? null, hypervisorVersion: facts.hypervisorVersion || null })
      .where('uuid', '=', host.uuid)
      .execute();
  },
};

/**
 * A host that (re)joins changes the VXLAN peer lists of the other hosts on its L2s (host-sync.ts
 * `peers`): they are re-synced, best effort (a peer that is away gets its list on reconnect).
 */
const syncPeers: FlowStep<unknown, FlowDeps> = {
  name: 'sync-peers',
  describe: 'give the hosts sharing its VXLAN networks their new peer list',
  async run(ctx) {
    const peers = await vxlanPeerHosts(ctx.db, ctx.job.resourceUuid!);
    if (peers.length > 0) await ctx.deps.network.sync(peers, { bestEffort: true });
  },
};

const readCapacity: FlowStep<unknown, FlowDeps> = {
  name: 'read-capacity',
  describe: 'read the host capacity',
  async run(ctx) {
    const host = await hostOf(ctx);
    ctx.data.previousCapacity = { cpu: host.cpuTotal, memory: host.memoryTotal } satisfies HostCapacity;
    const cap = await ctx.deps.drivers.send(host, 'host.capacity', {});
    await ctx.db
      .updateTable('hosts')
      .set({ cpuTotal: cap.cpu, memoryTotal: cap.memory, updatedAt: new Date() })
      .where('uuid', '=', host.uuid)
      .execute();
  },
  async rollback(ctx) {
    const prev = ctx.data.previousCapacity as HostCapacity | undefined;
    // no saved capacity: the run stopped before reading anything (e.g. a fault before the step), so
    // there is nothing to undo; zeroing here would wipe a reconnecting host's capacity
    if (!prev) return;
    await ctx.db
      .updateTable('hosts')
      .set({ cpuTotal: prev.cpu, memoryTotal: prev.memory })
      .where('uuid', '=', ctx.job.resourceUuid!)
      .execute();
  },
};

const markConnected: FlowStep<unknown, FlowDeps> = {
  name: 'mark-connected',
  describe: 'mark the host Connected',
  async run(ctx) {
    // a host joining a cluster with local primary storage gets its share of it (idempotent; the
    // host's removal by a rollback takes the share with it)
    await ensureLocalStorageShares(ctx.db, ctx.job.resourceUuid!);
    await setStatus(ctx, 'Connected');
  },
  async rollback(ctx) {
    await setStatus(ctx, 'Connecting', ['Connected']);
  },
};

export const hostCreateFlow: FlowDef<HostCreateParams, FlowDeps> = {
  kind: 'host.create',
  recovery: 'rollback',
  steps: [
    createRecordStep(hostFamily),
    {
      name: 'provision',
      describe: 'provision the simulated machine',
      async run(ctx) {
        const host = await hostOf(ctx as Ctx);
        if (host.hypervisorType !== 'simulator') return;
        await ctx.deps.simulator.ensureMachine(host.managementIp, {
          ...(ctx.params.simulatorCpu ? { cpu: ctx.params.simulatorCpu } : {}),
          ...(ctx.params.simulatorMemory ? { memory: ctx.params.simulatorMemory } : {}),
        });
      },
    },
    connect as FlowStep<HostCreateParams, FlowDeps>,
    readCapacity as FlowStep<HostCreateParams, FlowDeps>,
    markConnected as FlowStep<HostCreateParams, FlowDeps>,
    syncPeers as FlowStep<HostCreateParams, FlowDeps>,
  ],
  result: (ctx) => readRow(ctx.db, 'hosts', ctx.job.resourceUuid!),
};

export const hostReconnectFlow: FlowDef<unknown, FlowDeps> = {
  kind: 'host.reconnect',
  recovery: 'rollback',
  steps: [
    {
      name: 'mark-connecting',
      describe: 'mark the host Connecting',
      async run(ctx) {
        if (!(await setStatus(ctx, 'Connecting', ['Connected', 'Disconnected']))) {
          // another job is connecting the host: its Connecting is not ours to undo
          ctx.data.busy = true;
          throw new CloudError(
            'Conflict',
            'HOST_BUSY',
            'the host is already connecting; wait for that job to finish',
          );
        }
      },
      async rollback(ctx) {
        if (ctx.data.busy) return;
        await setStatus(ctx, 'Disconnected', ['Connecting']);
      },
    },
    connect,
    readCapacity,
    {
      name: 'sync-network',
      describe: 'send the host its whole network configuration',
      // full state, idempotent: nothing to undo
      async run(ctx) {
        await ctx.deps.network.sync([ctx.job.resourceUuid!]);
      },
    },
    markConnected,
    syncPeers,
  ],
  result: (ctx) => readRow(ctx.db, 'hosts', ctx.job.resourceUuid!),
};
