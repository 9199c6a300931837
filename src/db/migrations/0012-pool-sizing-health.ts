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
