/**
 * The login and floating IP of a handed-out pool VM (docs/self-service.md "Login" and
 * "Floating IP"):
 * - `vm_guest_configs`: what a VM's guest is given on its config drive beyond its name: the
 *   user-data and the cloud-init instance id (a new id makes cloud-init apply the user-data
 *   again: a pool VM handed out becomes its holder's instance). Written in a VM's admission (a
 *   deferred key, as `pool_vms`) or at a hand-out; read into every `vm.start` spec.
 * - `simulator_vms.user_data` / `instance_id`: what a simulated host was given, as a real host's
 *   config drive would hold it (tests read it).
 * - `pools.floating_l3_network_uuid` (a public L3: each handed-out VM gets an EIP from it) and
 *   `pools.login_user` (the guest user a login is made for).
 * - `leases`: the EIP and VIP made for the lease (released when it ends) and the login's state.
 * - `pools_with_stock` is made again: a view's `p.*` is fixed when it is created.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table vm_guest_configs (
      vm_uuid uuid primary key references vms (uuid) on delete cascade deferrable initially deferred,
      user_data text,
      instance_id text,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`alter table simulator_vms add column user_data text, add column instance_id text`.execute(db);

  await sql`
    alter table pools
      add column floating_l3_network_uuid uuid references l3_networks (uuid),
      add column login_user text not null default 'dev'`.execute(db);
  await sql`drop view pools_with_stock`.execute(db);
  await sql`
    create view pools_with_stock as
    select p.*,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Ready')::int as ready,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Provisioning')::int as provisioning,
      (select count(*) from pool_vms v where v.pool_uuid = p.uuid and v.state = 'Allocated')::int as allocated,
      -- adaptive sizing's figures (0012-pool-sizing-health), kept when the view is made again
      floor(p.cap * p.size_factor)::int as effective_cap,
      least(floor(p.warm_target * p.size_factor), floor(p.cap * p.size_factor))::int as effective_warm_target
    from pools p`.execute(db);

  await sql`
    alter table leases
      add column eip_uuid uuid references eips (uuid) on delete set null,
      add column vip_uuid uuid references vips (uuid) on delete set null,
      add column floating_ip text,
      add column login_method text check (login_method in ('ssh-key', 'password')),
      add column login_user text,
      add column login_state text check (login_state in ('Delivering', 'Delivered', 'Failed'))`.execute(db);
}
