/**
 * Pools that grow under bursts and VMs that heal (docs/self-service.md "Adaptive sizing", "Health").
 * - `pools`: the burst settings (window, threshold, the two factors) and the factor in force
 *   (`size_factor`, 1 when calm, with when it last changed). The effective cap and warm target
 *   are the configured ones times that factor.
 * - `pool_misses`: one row per allocation refused because the pool was empty (append-only, no row
 *   every request updates); with the leases made in the window it is the pool's demand.
 * - `leases_pool_created_idx`: counting a pool's leases of the last window reads an index range.
 * - `leases.health`: Healthy, Healing (the health scanner works on its VM) or Unhealable
 *   (restart, rebuild and migration all failed; its holder was told).
 * - `vm_heals`: the healing in progress of a leased VM: the stage (restart → rebuild → migrate),
 *   the step within it, and the host it was on when it broke. Each step's job carries a request
 *   id made of these, so a node that dies between submitting a job and recording it finds the
 *   job again instead of submitting it twice.
 * - `quota_charges`: a quota charge made at COMMIT. A pool hand-out inserts one row (the holder's
 *   account, the amounts, the default limits for rows made on first use); a deferred constraint
 *   trigger applies it when the transaction commits — the same ordered, conditional UPDATE as
 *   reserveQuota, raising SQLSTATE NQ001 (naming the quota) when a limit would be passed, which
 *   aborts the whole transaction — and deletes the row. The account's quota rows are then locked
 *   only inside the server's COMMIT, not across the client round trips of the rest of the
 *   transaction: concurrent hand-outs of one account no longer queue on them for milliseconds each.
 * - `pools_with_stock` is made again (its `p.*` was expanded when it was created), with the
 *   effective cap and warm target.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table pools
      add column burst_window_seconds integer not null default 300,
      add column burst_threshold integer check (burst_threshold >= 1),
      add column burst_factor double precision not null default 1.5,
      add column burst_max_factor double precision not null default 2,
      add column size_factor double precision not null default 1,
      add column size_changed_at timestamptz,
      add constraint pools_burst_check check (
        burst_factor >= 1 and burst_max_factor >= burst_factor and burst_max_factor <= 4
        and size_factor >= 1 and size_factor <= 4)`.execute(db);

  await sql`
    create table pool_misses (
      pool_uuid uuid not null references pools (uuid) on delete cascade,
      at timestamptz not null default now()
    )`.execute(db);
  await sql`create index pool_misses_pool_at_idx on pool_misses (pool_uuid, at)`.execute(db);
  await sql`create index leases_pool_created_idx on leases (pool_uuid, created_at)`.execute(db);

  await sql`
    alter table leases add column health text not null default 'Healthy'
      check (health in ('Healthy', 'Healing', 'Unhealable'))`.execute(db);
  await sql`
    create table vm_heals (
      vm_uuid uuid primary key references vms (uuid) on delete cascade,
      lease_uuid uuid not null references leases (uuid) on delete cascade,
      stage text not null check (stage in ('restart', 'rebuild', 'migrate')),
      step integer not null default 0,
      host_uuid uuid,
      started_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table quota_charges (
      id bigserial primary key,
      account_uuid uuid not null,
      usage jsonb not null,
      defaults jsonb not null
    )`.execute(db);
  await sql`
    create function apply_quota_charge() returns trigger language plpgsql as $$
    declare
      refused text;
    begin
      insert into quotas (account_uuid, name, limit_value)
        select new.account_uuid, d.key, d.value::bigint from jsonb_each_text(new.defaults) d
        on conflict (account_uuid, name) do nothing;
      -- rows locked in name order (as reserveQuota), then every amount or none
      with locked as (
        select q.name from quotas q
        where q.account_uuid = new.account_uuid and q.name in (select key from jsonb_each_text(new.usage))
        order by q.name for update),
      applied as (
        update quotas q set used = q.used + u.value::bigint, updated_at = now()
        from locked l, jsonb_each_text(new.usage) u
        where q.account_uuid = new.account_uuid and q.name = l.name and q.name = u.key
          and q.used + u.value::bigint <= q.limit_value
        returning q.name)
      select u.key into refused from jsonb_each_text(new.usage) u
      where u.key not in (select name from applied) order by u.key limit 1;
      if refused is not null then
        raise exception using errcode = 'NQ001', message = refused;
      end if;
      delete from quota_charges where id = new.id;
      return null;
    end $$`.execute(db);
  await sql`
    create constraint trigger quota_charges_apply after insert on quota_charges
      deferrable initially deferred for each row execute function apply_quota_charge()`.execute(db);

  await sql`drop view pools_with_stock`.execute(db);
  await sql`
    create view pools_with_stock as
    select p.*,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Ready')::int as ready,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Provisioning')::int as provisioning,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Allocated')::int as allocated,
      floor(p.cap * p.size_factor)::int as effective_cap,
      least(floor(p.warm_target * p.size_factor), floor(p.cap * p.size_factor))::int as effective_warm_target
    from pools p`.execute(db);
}
