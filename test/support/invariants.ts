/**
 * The invariants every concurrency test and benchmark ends with (issue #3), checked straight in
 * the database:
 * - for every host, cpu_used / memory_used / vm_count = Σ over the VMs holding capacity on it
 *   (host_uuid, or migration_target_uuid while a migration runs);
 * - no host beyond its over-commit limit (the scheduler's formulas and the settings given);
 * - a VM holds a host exactly when it is Running, Paused or Unknown (the stop policy);
 * - every primary storage's used capacity (for local storage: every host's share) = Σ its
 *   volumes + its cached images;
 * - no VM or volume in a transitional state or with a task, no job Pending or Running;
 * - networking: no IP address twice on an L3; every NIC holds exactly its address row (same L3,
 *   same IP, owned by the NIC and its VM) and no NIC address row is without its NIC (no leak);
 *   a NIC is carried by its VM's host while the VM runs there (Running, Paused, Unknown) and by
 *   no host otherwise.
 * And, checked only where called (quotaViolations): every normal account's quota usage is what
 * it owns.
 */
import { sql } from 'kysely';
import type { Db } from '../../src/db/pool.js';
import { DEFAULT_SETTINGS, type Settings } from '../../src/kernel/settings.js';
import { TRANSITIONAL_STATES } from '../../src/kernel/vm-states.js';

type Limits = Pick<Settings, 'cpuOvercommit' | 'memoryOvercommit' | 'reservedMemoryPerHost'>;

/** Every violation, in words (empty when all hold). */
export async function invariantViolations(db: Db, limits: Limits = DEFAULT_SETTINGS): Promise<string[]> {
  const out: string[] = [];
  const hosts = await sql<{
    uuid: string;
    cpuUsed: number;
    memoryUsed: number;
    vmCount: number;
    cpu: number;
    memory: number;
    n: number;
    cpuLimit: number;
    memoryLimit: number;
  }>`
    with holds as (
      select host_uuid as host, cpu, memory from vms where host_uuid is not null
      union all select migration_target_uuid, cpu, memory from vms where migration_target_uuid is not null
    ), sums as (
      select host, sum(cpu)::int as cpu, sum(memory)::bigint as memory, count(*)::int as n from holds group by host
    )
    select h.uuid, h.cpu_used, h.memory_used, h.vm_count,
      coalesce(s.cpu, 0) as cpu, coalesce(s.memory, 0) as memory, coalesce(s.n, 0) as n,
      floor(h.cpu_total * ${String(limits.cpuOvercommit)}::numeric)::int as cpu_limit,
      (floor(h.memory_total * ${String(limits.memoryOvercommit)}::numeric) - ${limits.reservedMemoryPerHost})::bigint as memory_limit
    from hosts h left join sums s on s.host = h.uuid`.execute(db);
  for (const h of hosts.rows) {
    if (h.cpuUsed !== h.cpu || Number(h.memoryUsed) !== Number(h.memory) || h.vmCount !== h.n) {
      out.push(
        `host ${h.uuid}: used cpu ${h.cpuUsed} / memory ${h.memoryUsed} / vms ${h.vmCount}, but its VMs hold ${h.cpu} / ${h.memory} / ${h.n}`,
      );
    }
    if (h.n > 0 && (h.cpuUsed > h.cpuLimit || Number(h.memoryUsed) > Number(h.memoryLimit)))
      out.push(
        `host ${h.uuid} over its over-commit limit: cpu ${h.cpuUsed}/${h.cpuLimit}, memory ${h.memoryUsed}/${h.memoryLimit}`,
      );
  }
  const holders = await db
    .selectFrom('vms')
    .select(['uuid', 'state', 'hostUuid'])
    .where((eb) =>
      eb.or([
        eb.and([eb('state', 'in', ['Running', 'Paused', 'Unknown']), eb('hostUuid', 'is', null)]),
        eb.and([eb('state', 'in', ['Stopped', 'Destroyed']), eb('hostUuid', 'is not', null)]),
      ]),
    )
    .limit(20)
    .execute();
  for (const v of holders)
    out.push(`vm ${v.uuid} is ${v.state} but ${v.hostUuid ? 'holds' : 'holds no'} host`);

  const storages = await sql<{ ps: string; host: string | null; used: number; sum: number }>`
    with parts as (
      select primary_storage_uuid as ps, host_uuid as host, size from volumes where primary_storage_uuid is not null
      union all select primary_storage_uuid, host_uuid, size from image_cache
    ), shares as (
      select p.uuid as ps, null::uuid as host, p.capacity_used as used from primary_storages p where p.type <> 'local'
      union all select primary_storage_uuid, host_uuid, capacity_used from primary_storage_hosts
    )
    select s.ps, s.host, s.used,
      coalesce((select sum(size) from parts where parts.ps = s.ps and parts.host is not distinct from s.host), 0)::bigint as sum
    from shares s`.execute(db);
  for (const s of storages.rows) {
    if (Number(s.used) !== Number(s.sum))
      out.push(
        `primary storage ${s.ps}${s.host ? ` (host ${s.host})` : ''}: used ${s.used}, but its volumes and cache hold ${s.sum}`,
      );
  }

  const busy = await db
    .selectFrom('vms')
    .select(['uuid', 'state', 'task'])
    .where((eb) => eb.or([eb('state', 'in', [...TRANSITIONAL_STATES]), eb('task', 'is not', null)]))
    .limit(20)
    .execute();
  for (const v of busy) out.push(`vm ${v.uuid} left ${v.state}${v.task ? ` with task ${v.task}` : ''}`);
  const volumes = await db
    .selectFrom('volumes')
    .select(['uuid', 'state'])
    .where('state', '=', 'Creating')
    .limit(20)
    .execute();
  for (const v of volumes) out.push(`volume ${v.uuid} left ${v.state}`);
  const jobs = await db
    .selectFrom('jobs')
    .select(['uuid', 'kind', 'state'])
    .where('state', 'in', ['Pending', 'Running'])
    .limit(20)
    .execute();
  for (const j of jobs) out.push(`job ${j.uuid} (${j.kind}) still ${j.state}`);
  out.push(...(await networkViolations(db)));
  return out;
}

/** The networking invariants (see the module comment). */
async function networkViolations(db: Db): Promise<string[]> {
  const out: string[] = [];
  const duplicates = await sql<{ l3: string; ip: string; n: number }>`
    select l3_network_uuid as l3, min(ip) as ip, count(*)::int as n from ip_addresses
    group by l3_network_uuid, ip_number having count(*) > 1 limit 20`.execute(db);
  for (const d of duplicates.rows) out.push(`ip ${d.ip} allocated ${d.n} times on l3 network ${d.l3}`);
  const unheld = await sql<{ nic: string; ip: string | null }>`
    select n.uuid as nic, n.ip from vm_nics n
    left join ip_addresses a on a.uuid = n.ip_address_uuid
    where a.uuid is null or a.ip is distinct from n.ip or a.l3_network_uuid <> n.l3_network_uuid
      or a.owner_uuid is distinct from n.uuid or a.vm_uuid is distinct from n.vm_uuid
    limit 20`.execute(db);
  for (const n of unheld.rows) out.push(`nic ${n.nic} (ip ${n.ip}) does not hold its address row`);
  const leaked = await sql<{ uuid: string; ip: string }>`
    select a.uuid, a.ip from ip_addresses a
    where a.used_for = 'vm-nic' and not exists (select 1 from vm_nics n where n.ip_address_uuid = a.uuid)
    limit 20`.execute(db);
  for (const a of leaked.rows) out.push(`address ${a.ip} (${a.uuid}) is held by no NIC`);
  const misplaced = await sql<{ nic: string; host: string | null; state: string; vmHost: string | null }>`
    select n.uuid as nic, n.host_uuid as host, v.state, v.host_uuid as vm_host from vm_nics n
    join vms v on v.uuid = n.vm_uuid
    where n.host_uuid is distinct from
      (case when v.state in ('Running', 'Paused', 'Unknown') then v.host_uuid end)
    limit 20`.execute(db);
  for (const m of misplaced.rows)
    out.push(`nic ${m.nic} is carried by host ${m.host} but its vm is ${m.state} on ${m.vmHost}`);
  return out;
}

/**
 * Quota usage = what exists (quota.ts, volume/model.ts): for every normal account with quota
 * rows, vm.num / vm.cpu / vm.memory = its VM rows (a Destroyed VM holds its share until
 * expunged), volume.capacity = the size of its volume rows (soft-deleted ones included) and
 * volume.data.num = its Data volume rows. A create that rolled back must have given back all
 * it reserved; one that succeeded, charged exactly once.
 */
export async function quotaViolations(db: Db): Promise<string[]> {
  const { rows } = await sql<{ account: string; name: string; used: number; actual: number }>`
    with owned as (
      select a.uuid as account, 'vm.num' as name, (select count(*) from vms v where v.account_uuid = a.uuid) as actual from accounts a
      union all select a.uuid, 'vm.cpu', (select coalesce(sum(cpu), 0) from vms v where v.account_uuid = a.uuid) from accounts a
      union all select a.uuid, 'vm.memory', (select coalesce(sum(memory), 0) from vms v where v.account_uuid = a.uuid) from accounts a
      union all select a.uuid, 'volume.capacity', (select coalesce(sum(size), 0) from volumes o where o.account_uuid = a.uuid) from accounts a
      union all select a.uuid, 'volume.data.num', (select count(*) from volumes o where o.account_uuid = a.uuid and o.type = 'Data') from accounts a
    )
    select q.account_uuid as account, q.name, q.used, o.actual::bigint as actual
    from quotas q join owned o on o.account = q.account_uuid and o.name = q.name
    join accounts a on a.uuid = q.account_uuid and a.type = 'normal'
    where q.used <> o.actual limit 20`.execute(db);
  return rows.map((r) => `account ${r.account}: quota ${r.name} used ${r.used}, but it owns ${r.actual}`);
}

/** Throws, listing every violation, unless all the invariants hold. */
export async function assertInvariants(db: Db, limits: Limits = DEFAULT_SETTINGS): Promise<void> {
  const violations = await invariantViolations(db, limits);
  if (violations.length > 0) throw new Error(`invariants violated:\n  ${violations.join('\n  ')}`);
}
