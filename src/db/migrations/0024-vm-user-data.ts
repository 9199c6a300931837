/**
 * User-data on an ordinary VM create (docs/compute.md "User-data"): the text itself lives in
 * `vm_guest_configs` (0017), as a pool VM's does; `vms.has_user_data` says whether a VM has
 * some, so a GET can show that without the text (it may hold secrets) and without a join.
 * `simulator_vms.serial_log`: the synthetic boot log a simulated host keeps per VM, the
 * simulator's answer to `vm.serial-log` (drivers/simulator/serial-log.ts).
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table vms add column has_user_data boolean not null default false`.execute(db);
  // VMs that already have user-data (pool VMs, OpenStack servers) say so
  await sql`
    update vms v set has_user_data = true
    from vm_guest_configs g where g.vm_uuid = v.uuid and g.user_data is not null`.execute(db);
  await sql`alter table simulator_vms add column serial_log text not null default ''`.execute(db);
}
