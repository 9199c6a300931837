/**
 * Reconciliation: hosts say what really runs on them (`vm.list`); where the platform disagrees,
 * reality wins and every repair is recorded as an event.
 *
 * - Platform Running/Paused/Unknown on this host, host says Stopped or nothing → Stopped, host
 *   capacity given back (the stop policy).
 * - Host runs (or pauses) a VM the platform has Stopped → Running/Paused, capacity taken on this
 *   host whatever the room (in both repairs the VM's NICs move with it and the hosts re-sync) (it runs there: counting it is the truth, even over-committed).
 * - Host runs or pauses a VM the platform has as the other one → that state.
 * - Host still has a VM the platform Destroyed (destroyed while the host was away) → vm.destroy;
 *   likewise a Stopped definition of a VM the platform no longer has at all (expunged).
 * - A host that fails `vm.list` `failuresBeforeDisconnect` times in a row → Disconnected, and
 *   its Running/Paused VMs → Unknown (they keep their capacity: they may still run). When it
 *   answers again → Connected, and its VMs take the states it reports.
 * - Host runs, pauses or defines a VM the platform has on another host (a stale copy: the host
 *   was fenced and its VMs restarted elsewhere, or it was away when the VM started elsewhere)
 *   → vm.destroy there; on a host that comes back from a fence,
 *   also a VM the platform has Stopped: nothing a fenced host ran is brought back.
 * - A VM of HA level restart-on-failure (or restart-on-host-failure) whose guest died → Stopped,
 *   then started again on its host (ha-triggers.ts); a host silent past the threshold in a
 *   cluster with host HA on → its `host.ha-recover` chain (fence, then restart elsewhere).
 * A VM with a task in flight is never touched: every repair is a conditional UPDATE on
 * `task is null and state = <the state seen>`, so an operation admitted meanwhile wins.
 */
import { type RawBuilder, sql } from 'kysely';
import { ownedBy } from '../../../cluster/ownership.js';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { EventInput } from '../../../engine/events.js';
import { resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';
import { type Placed, placeNics, syncNetwork } from '../vm-nic/nics.js';
import type { HaTriggers } from './ha-triggers.js';
import { releaseHost, reserveHost } from './host-capacity.js';
import { vmFamily } from './model.js';
import { type HostRow, needsRepair, type Reported, staleCopy, type VmRow } from './reconcile-decisions.js';
import type { VmRuntime } from './runtime.js';

export interface ReconcileReport {
  hosts: number;
  repaired: number;
  disconnected: string[];
  reconnected: string[];
}

/** hosts per page of a pass: one VM read per page */
const PAGE = 200;
/** VMs a page should read at most: dense hosts make pages of fewer hosts */
const PAGE_VMS = 20_000;

const hostFamily = { singular: 'host', kind: 'hosts', table: 'hosts' as const };

export class Reconciler {
  /** hosts that failed to answer, and how many times in a row (only hosts failing now) */
  private readonly failures = new Map<string, number>();
  /** the hosts that failed in the pass in flight: a host gone from the list is forgotten */
  private readonly seenFailing = new Set<string>();
  private running: Promise<ReconcileReport> | undefined;
  /** hosts per page of a pass (tests make it small to cross pages with a few hosts) */
  pageSize = PAGE;

  constructor(
    private readonly db: Db,
    private readonly deps: FlowDeps,
    private readonly rt: VmRuntime,
    /** this node: it reconciles only the hosts it owns (cluster/ownership.ts) */
    private readonly nodeId: string,
    /** host HA and restart-on-failure (absent: the reconciler only repairs) */
    private readonly ha?: HaTriggers,
    private readonly failuresBeforeDisconnect = 3,
  ) {}

  /** One pass over every Connected or Disconnected host; concurrent calls share one pass. */
  reconcileAll(): Promise<ReconcileReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Pages through the hosts this node owns (keyset on uuid, PAGE at a time), so a pass holds
   * one page in memory however many hosts there are, and reads the VMs of a whole page in one
   * statement: the database work per host is a share of a statement, not a round trip.
   */
  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { hosts: 0, repaired: 0, disconnected: [], reconnected: [] };
    this.seenFailing.clear();
    let limit = this.pageSize;
    for (let after = ''; ; ) {
      const hosts = await this.db
        .selectFrom('hosts')
        .select(['uuid', 'managementIp', 'hypervisorType', 'status', 'accountUuid', 'fencedAt'])
        .where('status', 'in', ['Connected', 'Disconnected'])
        .where('uuid', '>', after || '00000000-0000-0000-0000-000000000000')
        // with several management nodes each host is reconciled by one of them, not by all
        .where(ownedBy('hosts', this.nodeId))
        .orderBy('uuid')
        .limit(limit)
        .execute();
      if (hosts.length === 0) break;
      report.hosts += hosts.length;
      const vms = await this.reconcilePage(hosts, report);
      if (hosts.length < limit) break;
      after = hosts[hosts.length - 1]!.uuid;
      // the next page holds about PAGE_VMS VMs, at hosts as dense as these
      limit = Math.max(1, Math.min(this.pageSize, Math.floor((PAGE_VMS * hosts.length) / Math.max(1, vms))));
      // let the API's requests in between two pages
      await new Promise((r) => setImmediate(r));
    }
    for (const uuid of this.failures.keys()) if (!this.seenFailing.has(uuid)) this.failures.delete(uuid);
    this.seenFailing.clear();
    return report;
  }

  /** Reconciles one page of hosts; how many VM rows it read. */
  private async reconcilePage(hosts: HostRow[], report: ReconcileReport): Promise<number> {
    // the platform's rows BEFORE the hosts' answers: a VM that starts after its row was read is
    // seen with its task still set (skipped), never as a Running VM its host does not report
    // (read the other way round, a create finishing in between was marked Stopped until the
    // next pass). One array parameter, not one per uuid: a page of dense hosts may hold more VMs
    // than a statement may have parameters (65,535).
    const placed = await this.readVms(sql<boolean>`host_uuid = any(${hosts.map((h) => h.uuid)}::uuid[])`);
    // ask every host of the page what it runs (the simulator answers a page in one read)
    const listedAt = Date.now();
    const lists = await Promise.all(hosts.map((h) => this.listOn(h, report)));
    const answered = hosts.filter((_, i) => lists[i] !== undefined);
    if (answered.length === 0) return placed.length;
    const hostUuids = answered.map((h) => h.uuid);
    // and the rows of what the hosts report that the platform places elsewhere (stale copies)
    const placedHere = new Set(placed.map((v) => v.uuid));
    const others = lists.flatMap((l) => (l ? l.map((v) => v.uuid) : [])).filter((u) => !placedHere.has(u));
    // read after the answers: a row changed since the hosts were asked is left to the next pass
    const elsewhere =
      others.length > 0 ? await this.readVms(sql<boolean>`uuid = any(${others}::uuid[])`) : [];
    // every VM the platform has (a changed one too: never taken for an unknown definition)
    const known = new Set([...placed, ...elsewhere].map((v) => v.uuid));
    const vms = [...placed, ...elsewhere.filter((v) => v.updatedAt.getTime() < listedAt)];
    const byUuid = new Map(vms.map((v) => [v.uuid, v]));
    const onHost = new Map<string, typeof vms>();
    for (const vm of vms) {
      if (!vm.hostUuid) continue;
      const list = onHost.get(vm.hostUuid);
      if (list) list.push(vm);
      else onHost.set(vm.hostUuid, [vm]);
    }
    await Promise.all(
      hosts.map(async (h, i) => {
        const list = lists[i];
        if (list === undefined) return;
        try {
          // the VMs the platform places here, and those the host reports wherever the platform has them
          const mine = new Map((onHost.get(h.uuid) ?? []).map((v) => [v.uuid, v]));
          for (const v of list) {
            const vm = byUuid.get(v.uuid);
            if (vm) mine.set(vm.uuid, vm);
          }
          await this.reconcileHost(h, list, [...mine.values()], known, report);
        } catch (err) {
          this.deps.log.warn({ err, host: h.uuid }, 'reconciling a host failed');
        }
      }),
    );
    await this.db
      .updateTable('hosts')
      .set({ lastSeenAt: new Date() })
      .where(sql<boolean>`uuid = any(${hostUuids}::uuid[])`)
      .execute();
    return vms.length;
  }

  /** The rows a repair decides from (setState applies a decision only while they are unchanged). */
  private readVms(where: RawBuilder<boolean>): Promise<VmRow[]> {
    return this.db
      .selectFrom('vms')
      .select([
        'uuid',
        'accountUuid',
        'state',
        'task',
        'hostUuid',
        'migrationTargetUuid',
        'cpu',
        'memory',
        'haLevel',
        'updatedAt',
      ])
      .where(where)
      .execute();
  }

  /** What `host` runs, or undefined when it did not answer (counted towards Disconnected). */
  private async listOn(
    host: HostRow,
    report: ReconcileReport,
  ): Promise<Array<{ uuid: string; state: Reported }> | undefined> {
    try {
      const list = (await this.deps.drivers.send(host, 'vm.list', {})).vms;
      this.failures.delete(host.uuid);
      if (host.status === 'Disconnected') await this.hostBack(host, report);
      return list;
    } catch (err) {
      const n = (this.failures.get(host.uuid) ?? 0) + 1;
      this.failures.set(host.uuid, n);
      this.seenFailing.add(host.uuid);
      try {
        if (n >= this.failuresBeforeDisconnect) {
          await this.hostSilent(host, report, err);
          // every pass while it stays silent: a recovery that failed (its fence did) is tried again
          await this.ha?.hostSilent(host);
        }
      } catch (e) {
        this.deps.log.warn({ err: e, host: host.uuid }, 'marking a silent host Disconnected failed');
      }
      return undefined;
    }
  }

  /** Reconciles one host that answered, against the platform's rows of its VMs. */
  private async reconcileHost(
    host: HostRow,
    list: Array<{ uuid: string; state: Reported }>,
    vms: VmRow[],
    known: ReadonlySet<string>,
    report: ReconcileReport,
  ): Promise<void> {
    const reported = new Map(list.map((v) => [v.uuid, v.state]));
    for (const vm of vms) {
      if (vm.task !== null) continue;
      const actual = reported.get(vm.uuid);
      // decided without awaiting: a page of agreeing VMs (the usual case) is one loop, not a
      // chain of microtasks that keeps the event loop from the API's requests
      if (!needsRepair(host, vm, actual)) continue;
      const repaired = await this.repair(host, vm, actual);
      if (repaired) report.repaired++;
    }
    // a stopped definition of a VM the platform no longer has (expunged while its host was away):
    // forgotten there. A running one is left alone: nothing here decides to kill a guest.
    for (const [uuid, state] of reported) {
      if (known.has(uuid) || state !== 'Stopped') continue;
      await this.deps.drivers.send(host, 'vm.destroy', { vmUuid: uuid }).catch((err: unknown) => {
        this.deps.log.warn(
          { err, host: host.uuid, vm: uuid },
          'could not drop the definition of an unknown VM',
        );
      });
    }
  }

  private async repair(host: HostRow, vm: VmRow, actual: Reported | undefined): Promise<boolean> {
    const holdsHere = vm.hostUuid === host.uuid;
    const stale = staleCopy(host, vm, actual);
    if (stale) {
      await this.deps.drivers.send(host, 'vm.destroy', { vmUuid: vm.uuid });
      await this.emit([
        resourceEvent(vmFamily, vm, 'drift.repaired', {
          host: host.uuid,
          action: 'destroyed stale copy',
          reason: stale === 'fenced' ? 'its host was fenced' : `the VM runs on host ${vm.hostUuid}`,
        }),
      ]);
      return true;
    }
    const live = vm.state === 'Running' || vm.state === 'Paused' || vm.state === 'Unknown';
    if (holdsHere && live) {
      if (actual === vm.state) return false;
      if (actual === 'Running' || actual === 'Paused') return this.setState(vm, actual, actual, 'drift');
      // gone from the host (crashed, shut down from inside, host rebooted): the stop policy
      // applies, and its NICs leave the host's network with it
      let nics: Placed | undefined;
      const stopped = await this.setState(vm, 'Stopped', actual ?? 'NoState', 'drift', async (tx) => {
        if (await releaseHost(tx, vm.uuid, 'host', host.uuid))
          this.rt.snapshot.onHostCapacity(host.uuid, vm.cpu, vm.memory, -1);
        nics = await placeNics(tx, vm.uuid, null);
      });
      if (stopped && nics) await this.resync(nics, [], [host.uuid]);
      if (stopped) await this.guestDied(vm, host);
      return stopped;
    }
    if (vm.state === 'Stopped' && !vm.hostUuid && (actual === 'Running' || actual === 'Paused')) {
      let nics: Placed | undefined;
      const running = await this.setState(vm, actual, actual, 'drift', async (tx) => {
        await reserveHost(tx, vm, host.uuid, this.deps.settings, { slot: 'host', force: true });
        this.rt.snapshot.onHostCapacity(host.uuid, vm.cpu, vm.memory, 1);
        nics = await placeNics(tx, vm.uuid, host.uuid);
      });
      if (running && nics) await this.resync(nics, [host.uuid], []);
      return running;
    }
    if (vm.state === 'Destroyed' && actual !== undefined) {
      await this.deps.drivers.send(host, 'vm.destroy', { vmUuid: vm.uuid });
      await this.emit([
        resourceEvent(vmFamily, vm, 'drift.repaired', { host: host.uuid, action: 'destroyed stray' }),
      ]);
      return true;
    }
    return false;
  }

  /** restart-on-failure: the guest died while its host answers; it is started again there */
  private async guestDied(vm: { uuid: string; accountUuid: string; haLevel: string }, host: HostRow) {
    if (!this.ha || vm.haLevel === 'none') return;
    try {
      await this.ha.guestDied(vm, host.uuid);
    } catch (err) {
      this.deps.log.warn(
        { err, vm: vm.uuid, host: host.uuid },
        'HA: could not restart a VM whose guest died',
      );
    }
  }

  /** Re-syncs the network of a VM whose NICs a repair moved (best-effort: the next pass retries). */
  private async resync(nics: Placed, hosts: string[], leaving: string[]): Promise<void> {
    if (nics.l3NetworkUuids.length === 0) return;
    try {
      await syncNetwork(this.db, this.deps, {
        hosts,
        leaving: [...leaving, ...nics.before],
        routed: nics.routed,
      });
    } catch (err) {
      this.deps.log.warn({ err, hosts }, 'reconciler: network re-sync after a repair failed');
    }
  }

  /** Moves an idle VM from the state seen to `state`, with `also` in the same transaction. */
  private async setState(
    vm: { uuid: string; accountUuid: string; state: string; updatedAt: Date },
    state: string,
    powerState: string,
    why: string,
    also?: (tx: Tx) => Promise<void>,
  ): Promise<boolean> {
    return this.deps.events.inTransaction(this.db, async (tx, batch) => {
      const row = await tx
        .updateTable('vms')
        .set({ state, powerState, updatedAt: new Date() })
        .where('uuid', '=', vm.uuid)
        // decided from a row read before the host answered: only while that row is unchanged
        // (a stop and a start in between leave the same state, task and host, not the same
        // updated_at; compared to the millisecond a Date holds)
        .where('state', '=', vm.state)
        .where('task', 'is', null)
        .where(sql<boolean>`date_trunc('milliseconds', updated_at) = ${vm.updatedAt}`)
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      if (!row) return false; // an operation got there first
      await also?.(tx);
      batch.add(
        resourceEvent(vmFamily, row, 'state.changed', { state, powerState, from: vm.state, reason: why }),
      );
      return true;
    });
  }

  private async hostSilent(host: HostRow, report: ReconcileReport, err: unknown): Promise<void> {
    await this.deps.events.inTransaction(this.db, async (tx, batch) => {
      const changed = await tx
        .updateTable('hosts')
        .set({ status: 'Disconnected', updatedAt: new Date() })
        .where('uuid', '=', host.uuid)
        .where('status', '=', 'Connected')
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      if (changed) {
        report.disconnected.push(host.uuid);
        batch.add(
          resourceEvent(hostFamily, changed, 'status.changed', {
            status: 'Disconnected',
            reason: `no answer ${this.failuresBeforeDisconnect} times: ${(err as Error).message}`,
          }),
        );
      }
      // its idle VMs may still run, or not: Unknown until the host answers (capacity kept)
      const unknown = await tx
        .updateTable('vms')
        .set({ state: 'Unknown', updatedAt: new Date() })
        .where('hostUuid', '=', host.uuid)
        .where('state', 'in', ['Running', 'Paused'])
        .where('task', 'is', null)
        .returning(['uuid', 'accountUuid'])
        .execute();
      report.repaired += unknown.length;
      for (const vm of unknown)
        batch.add(
          resourceEvent(vmFamily, vm, 'state.changed', { state: 'Unknown', reason: 'host disconnected' }),
        );
    });
  }

  private async hostBack(host: HostRow, report: ReconcileReport): Promise<void> {
    const back = await this.deps.events.inTransaction(this.db, async (tx, batch) => {
      const changed = await tx
        .updateTable('hosts')
        .set({ status: 'Connected', fencedAt: null, updatedAt: new Date() })
        .where('uuid', '=', host.uuid)
        .where('status', '=', 'Disconnected')
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      if (!changed) return false;
      report.reconnected.push(host.uuid);
      batch.add(
        resourceEvent(hostFamily, changed, 'status.changed', {
          status: 'Connected',
          reason: host.fencedAt
            ? `answers again after it was fenced at ${host.fencedAt.toISOString()}; none of its moved VMs comes back to it`
            : 'answers again',
        }),
      );
      return true;
    });
    // a host that was away may have lost its network configuration: send it all again
    if (back) await this.deps.network.sync([host.uuid], { bestEffort: true });
  }

  private async emit(events: EventInput[]): Promise<void> {
    const stored = await this.deps.events.write(this.db, events);
    this.deps.events.publish(stored);
  }
}
