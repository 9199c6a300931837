/**
 * Self-service pools and leases (docs/self-service.md).
 * - `pool_vms`: the VMs a pool holds, one row each, Provisioning → Ready → Allocated, and
 *   Discarding once it is to go (broken, trimmed, or its lease ended) until its VM is expunged
 *   (the row goes with the VM: ON DELETE CASCADE). Every row counts against the cap. A hand-out
 *   claims ONE Ready row with `FOR UPDATE SKIP LOCKED`, so concurrent callers take different
 *   rows and never wait for each other (no counter row every allocation updates). The row is
 *   written in the same transaction as its VM's admission; its foreign key is deferred to the
 *   commit because the VM row is inserted after it in that transaction.
 * - `leases`: who holds which VM until when; at most one live lease per VM (a partial unique
 *   index), so a VM is never handed out twice even by two nodes.
 * - `pools_with_stock`: pools as the API shows them, with their counts (scalar subqueries over
 *   the indexed `pool_vms`).
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table pools (
      uuid uuid primary key,
      name text not null,
      description text,
      account_uuid uuid not null,
      state text not null default 'Enabled' check (state in ('Enabled', 'Disabled')),
      image_uuid uuid not null references images (uuid),
      instance_offering_uuid uuid not null references instance_offerings (uuid),
      l3_network_uuids jsonb not null,
      security_group_uuids jsonb not null default '[]',
      user_data text,
      warm_target integer not null check (warm_target >= 0),
      cap integer not null check (cap >= 1),
      default_lease_seconds integer not null,
      max_lease_seconds integer not null,
      max_renewals integer not null,
      per_user_limit integer not null,
      shared boolean not null default false,
      empty_policy text not null default 'fail' check (empty_policy in ('fail', 'wait')),
      wait_seconds integer not null default 30,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint pools_lease_check check (default_lease_seconds <= max_lease_seconds),
      constraint pools_warm_check check (warm_target <= cap)
    )`.execute(db);
  await sql`create unique index pools_name_key on pools (account_uuid, name)`.execute(db);

  await sql`
    create table pool_vms (
      vm_uuid uuid primary key references vms (uuid) on delete cascade deferrable initially deferred,
      pool_uuid uuid not null references pools (uuid),
      state text not null check (state in ('Provisioning', 'Ready', 'Allocated', 'Discarding')),
      created_at timestamptz not null default now(),
      ready_at timestamptz
    )`.execute(db);
  await sql`create index pool_vms_pool_state_idx on pool_vms (pool_uuid, state, ready_at)`.execute(db);

  await sql`
    create table leases (
      uuid uuid primary key,
      name text not null,
      description text,
      account_uuid uuid not null,
      user_uuid uuid not null,
      pool_uuid uuid not null references pools (uuid) on delete cascade,
      vm_uuid uuid references vms (uuid) on delete set null,
      -- the VM's addresses when it was handed out, so a holder reads them with the lease
      ips jsonb not null default '[]',
      importance text not null check (importance in ('normal', 'high')),
      state text not null check (state in ('Pending', 'Active', 'Stopped', 'Ended')),
      expires_at timestamptz not null,
      delete_after timestamptz,
      notified_at timestamptz,
      renewals integer not null default 0,
      ended_at timestamptz,
      end_reason text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index leases_live_vm_key on leases (vm_uuid) where state <> 'Ended'`.execute(db);
  await sql`create index leases_holder_idx on leases (pool_uuid, user_uuid) where state <> 'Ended'`.execute(
    db,
  );
  await sql`create index leases_expiry_idx on leases (expires_at) where state = 'Active'`.execute(db);
  await sql`create index leases_account_idx on leases (account_uuid)`.execute(db);

  await sql`
    create view pools_with_stock as
    select p.*,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Ready')::int as ready,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Provisioning')::int as provisioning,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Allocated')::int as allocated
    from pools p`.execute(db);
}
