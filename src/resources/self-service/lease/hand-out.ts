/**
 * The hand-out of a Ready VM in ONE statement (the allocate's fast path, allocate.ts): every
 * round trip of the admitting transaction holds one of the node's few database connections while
 * 100 callers queue for them, so the claim, the moves, the lease and the quota charge are one
 * CTE instead of a dozen statements (docs/self-service.md, "Allocation").
 *
 * In order, inside the caller's transaction:
 * - `lk`: the transaction-scoped advisory lock on (pool, user). The statement's snapshot was taken
 *   before the lock was granted, so the per-user limit is NOT counted here: the caller counts it
 *   in its next statement (a fresh snapshot, after the lock: it sees every lease of this user that
 *   committed before, and its own), and a count over the limit rolls all of this back;
 * - `claim`: the oldest Ready row whose VM runs with no operation in flight, both rows locked with
 *   `FOR UPDATE SKIP LOCKED` (concurrent callers take different VMs and never wait for each other;
 *   a Ready VM that stopped running is skipped: the stock pass discards it, pool/stock.ts);
 * - the row becomes Allocated; the VM, its volumes and NICs move to the holder's account;
 * - the lease is inserted Active (`leases_live_vm_key`: one live lease per VM, whatever happens);
 * - the holder's quota (vm.num, vm.cpu, vm.memory, the root disk's volume.capacity) is charged AT
 *   THE COMMIT through a `quota_charges` row (identity/quota/at-commit.ts), unless `charge` is
 *   false (an admin holder).
 * No VM ready (or none the caller could lock): nothing is written and `undefined` comes back.
 * Concurrent requests of a pool are served by hand-out-batch.ts, the set-based form of this
 * statement; this one serves a request that batch did not (allocate.ts).
 */
import { sql } from 'kysely';
import type { Tx } from '../../../db/transaction.js';
import { QUOTA_DEFAULTS, type QuotaUsage } from '../../identity/quota/quota.js';

export interface HandOutLease {
  uuid: string;
  description: string | null;
  accountUuid: string;
  userUuid: string;
  poolUuid: string;
  importance: 'normal' | 'high';
  expiresAt: Date;
  loginMethod: string | null;
  loginUser: string | null;
  loginState: string | null;
}

export interface HandOutRow extends Record<string, unknown> {
  vmName: string;
  vmState: string;
  vmHostUuid: string | null;
  vmCpu: number;
  vmMemory: number;
  vmNics: Array<{ ip: string | null; l3NetworkUuid: string; isDefault: boolean }>;
  chargedUsage: QuotaUsage;
}

export async function handOutReadyVm(tx: Tx, lease: HandOutLease, charge: boolean) {
  const { rows } = await sql<HandOutRow>`
    with lk as materialized (
      select pg_advisory_xact_lock(hashtext(${lease.poolUuid}), hashtext(${lease.userUuid}))::text as taken
    ),
    claim as (
      select pv.vm_uuid, v.root_volume_uuid
      from lk, pool_vms pv join vms v on v.uuid = pv.vm_uuid
      where pv.pool_uuid = ${lease.poolUuid} and pv.state = 'Ready' and v.state = 'Running' and v.task is null
      order by pv.ready_at limit 1
      for update of pv, v skip locked
    ),
    allocated as (
      update pool_vms set state = 'Allocated' from claim where pool_vms.vm_uuid = claim.vm_uuid
      returning pool_vms.vm_uuid
    ),
    vm as (
      update vms set account_uuid = ${lease.accountUuid}, updated_at = now()
      from claim where vms.uuid = claim.vm_uuid
      returning vms.uuid, vms.name, vms.state, vms.host_uuid, vms.cpu, vms.memory
    ),
    vols as (
      update volumes set account_uuid = ${lease.accountUuid}, updated_at = now()
      from claim where volumes.vm_uuid = claim.vm_uuid
      returning volumes.uuid, volumes.size
    ),
    nics as (
      update vm_nics set account_uuid = ${lease.accountUuid}, updated_at = now()
      from claim where vm_nics.vm_uuid = claim.vm_uuid
      returning vm_nics.ip, vm_nics.l3_network_uuid, vm_nics.is_default, vm_nics.device_id
    ),
    addr as (
      select coalesce(jsonb_agg(ip order by device_id) filter (where ip is not null), '[]') as ips,
        coalesce(jsonb_agg(jsonb_build_object('ip', ip, 'l3NetworkUuid', l3_network_uuid, 'isDefault', is_default)
          order by device_id), '[]') as nics
      from nics
    ),
    usage as (
      select jsonb_strip_nulls(jsonb_build_object('vm.num', 1, 'vm.cpu', vm.cpu, 'vm.memory', vm.memory,
        'volume.capacity', nullif((select coalesce(sum(vols.size), 0) from vols, claim
                                   where vols.uuid = claim.root_volume_uuid), 0))) as u
      from vm
    ),
    lease as (
      insert into leases (uuid, name, description, account_uuid, user_uuid, pool_uuid, importance, expires_at,
        vm_uuid, ips, state, login_method, login_user, login_state)
      select ${lease.uuid}, vm.name, ${lease.description}, ${lease.accountUuid}, ${lease.userUuid},
        ${lease.poolUuid}, ${lease.importance}, ${lease.expiresAt}, vm.uuid, addr.ips, 'Active',
        ${lease.loginMethod}, ${lease.loginUser}, ${lease.loginState}
      from vm, addr
      returning *
    ),
    charge as (
      insert into quota_charges (account_uuid, usage, defaults)
      select ${lease.accountUuid}, usage.u,
        (select jsonb_object_agg(k, ${JSON.stringify(QUOTA_DEFAULTS)}::jsonb -> k) from jsonb_object_keys(usage.u) k)
      from usage where ${charge}
    )
    select lease.*, vm.name as vm_name, vm.state as vm_state, vm.host_uuid as vm_host_uuid, vm.cpu as vm_cpu,
      vm.memory as vm_memory, addr.nics as vm_nics, usage.u as charged_usage
    from lease, vm, addr, usage, allocated`.execute(tx);
  const row = rows[0];
  return row ? handOutAnswer(row) : undefined;
}

/** The VM, the usage charged and the answer (what leaseWithVm, model.ts, reads back) from a hand-out's row. */
export function handOutAnswer(row: HandOutRow) {
  const { vmName, vmState, vmHostUuid, vmCpu, vmMemory, vmNics, chargedUsage, ...leaseRow } = row;
  const { notifiedAt: _n, eipUuid: _e, vipUuid: _v, ...shown } = leaseRow;
  const vm = {
    uuid: leaseRow.vmUuid as string,
    name: vmName,
    state: vmState,
    hostUuid: vmHostUuid,
    cpu: vmCpu,
    memory: vmMemory,
    ips: leaseRow.ips as string[],
    nics: vmNics,
  };
  /** `answer`: what leaseWithVm (model.ts) reads back, built from what the statement returned */
  return { vm, usage: chargedUsage, answer: { ...shown, vm } };
}
