/**
 * Host capacity held by VMs: taken and given back by single statements that change the host's
 * counters and the VM row's claim together, so they can never disagree (a crash between two
 * statements would otherwise leak capacity). The VM row is the record of what it holds:
 * `host_uuid` (or `migration_target_uuid` while migrating) names the host, `cpu`/`memory` the
 * amounts. Taking is conditional on room, with exactly the scheduler's formulas
 * (scheduler/capacity.ts: ⌊total × ratio⌋, minus reserved memory, max VMs); giving back is
 * conditional on the claim, so every release is idempotent and releases exactly what was held.
 */
import { type RawBuilder, sql } from 'kysely';
import type { Executor } from '../../../db/transaction.js';
import type { Settings } from '../../../kernel/settings.js';

export type Slot = 'host' | 'target';

export type HostLimits = Pick<
  Settings,
  'cpuOvercommit' | 'memoryOvercommit' | 'reservedMemoryPerHost' | 'maxVmsPerHost'
>;

/** A hard affinity rule the reservation must keep (checked in the same statement). */
export interface HardRule {
  groupUuid: string;
  policy: 'affinity' | 'anti-affinity';
}

export interface ReserveOptions {
  slot: Slot;
  /** take it whatever the room and host state (the reconciler: a VM found running must be counted) */
  force?: boolean;
  hard?: HardRule;
}

const column = (slot: Slot) => sql.raw(slot === 'host' ? 'host_uuid' : 'migration_target_uuid');

function roomCondition(vm: { cpu: number; memory: number }, limits: HostLimits): RawBuilder<unknown> {
  return sql`hosts.state = 'Enabled' and hosts.status = 'Connected'
    and hosts.cpu_used + ${vm.cpu} <= floor(hosts.cpu_total * ${String(limits.cpuOvercommit)}::numeric)
    and hosts.memory_used + ${vm.memory} <= floor(hosts.memory_total * ${String(limits.memoryOvercommit)}::numeric) - ${limits.reservedMemoryPerHost}
    and (${limits.maxVmsPerHost}::int = 0 or hosts.vm_count < ${limits.maxVmsPerHost}::int)`;
}

function hardCondition(vmUuid: string, rule: HardRule): RawBuilder<unknown> {
  const here = sql`exists (select 1 from vms m where m.affinity_group_uuid = ${rule.groupUuid}
    and m.uuid <> ${vmUuid} and (m.host_uuid = hosts.uuid or m.migration_target_uuid = hosts.uuid))`;
  if (rule.policy === 'anti-affinity') return sql`not ${here}`;
  const anywhere = sql`exists (select 1 from vms m where m.affinity_group_uuid = ${rule.groupUuid}
    and m.uuid <> ${vmUuid} and m.host_uuid is not null)`;
  return sql`(not ${anywhere} or ${here})`;
}

/**
 * Takes the VM's cpu and memory (and a VM slot) on `hostUuid` and records the claim on the VM
 * row, in one statement. False when the host has no room (or is not Enabled and Connected, or
 * the VM already holds that slot).
 */
export async function reserveHost(
  exec: Executor,
  vm: { uuid: string; cpu: number; memory: number },
  hostUuid: string,
  limits: HostLimits,
  o: ReserveOptions,
): Promise<boolean> {
  const col = column(o.slot);
  const conditions = [
    sql`hosts.uuid = ${hostUuid}`,
    sql`exists (select 1 from vms where uuid = ${vm.uuid} and ${col} is null)`,
  ];
  // only an Enabled host takes new work: the scheduler's snapshot may be up to a moment old, and
  // a host entering maintenance must take nothing after its state changed (the reconciler's
  // forced adoption of a VM found running there records a fact and is not refused)
  if (!o.force) conditions.push(roomCondition(vm, limits), sql`hosts.state = 'Enabled'`);
  if (o.hard) conditions.push(hardCondition(vm.uuid, o.hard));
  const placed =
    o.slot === 'host'
      ? sql`host_uuid = h.uuid, last_host_uuid = h.uuid, zone_uuid = h.zone_uuid, cluster_uuid = h.cluster_uuid`
      : sql`migration_target_uuid = h.uuid`;
  const res = await sql<{ uuid: string }>`
    with h as (
      update hosts set cpu_used = cpu_used + ${vm.cpu}, memory_used = memory_used + ${vm.memory}, vm_count = vm_count + 1
      where ${sql.join(conditions, sql` and `)}
      returning uuid, zone_uuid, cluster_uuid
    )
    update vms set ${placed}, updated_at = now() from h where vms.uuid = ${vm.uuid} returning vms.uuid`.execute(
    exec,
  );
  return res.rows.length === 1;
}

/**
 * Gives back what the VM holds in `slot` (on `hostUuid` only, when given). Idempotent: a VM
 * holding nothing there releases nothing. Returns the host released, if any.
 */
export async function releaseHost(
  exec: Executor,
  vmUuid: string,
  slot: Slot,
  hostUuid?: string,
): Promise<string | undefined> {
  const col = column(slot);
  const res = await sql<{ host: string }>`
    with v as (
      select uuid, ${col} as host, cpu, memory from vms
      where uuid = ${vmUuid} and ${col} is not null ${hostUuid ? sql`and ${col} = ${hostUuid}` : sql``}
      for update
    ),
    u as (update vms set ${col} = null from v where vms.uuid = v.uuid returning v.host, v.cpu, v.memory)
    update hosts set cpu_used = greatest(cpu_used - u.cpu, 0), memory_used = greatest(memory_used - u.memory, 0),
      vm_count = greatest(vm_count - 1, 0)
    from u where hosts.uuid = u.host returning hosts.uuid as host`.execute(exec);
  return res.rows[0]?.host;
}

/**
 * The end of a live migration, in one statement: the VM's claim moves from its source to its
 * target (which it already holds), and the source's capacity is given back.
 */
export async function switchToTarget(
  exec: Executor,
  vmUuid: string,
): Promise<{ from: string; to: string } | undefined> {
  const res = await sql<{ from: string; to: string }>`
    with v as (
      select uuid, host_uuid as src, migration_target_uuid as dst, cpu, memory from vms
      where uuid = ${vmUuid} and host_uuid is not null and migration_target_uuid is not null for update
    ),
    u as (
      update vms set host_uuid = v.dst, last_host_uuid = v.dst, migration_target_uuid = null, updated_at = now()
      from v where vms.uuid = v.uuid returning v.src, v.dst, v.cpu, v.memory
    )
    update hosts set cpu_used = greatest(cpu_used - u.cpu, 0), memory_used = greatest(memory_used - u.memory, 0),
      vm_count = greatest(vm_count - 1, 0)
    from u where hosts.uuid = u.src returning u.src as "from", u.dst as "to"`.execute(exec);
  return res.rows[0];
}
