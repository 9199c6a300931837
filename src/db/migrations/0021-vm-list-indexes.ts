/**
 * VM lists at a million VMs (issue 14, BENCHMARKS.md "bench:query"): the lists clients send are
 * a page in the default order (`createdAt`, then `uuid`), often filtered by state (the console's
 * tabs, `nimbus vm list -q state=Running`), either way round, and the dashboard's count per state.
 * `vms (state, uuid)` served the count but not the order: a state filter sorted newest first
 * walked the `created_at` index discarding every other state (217 ms at 1,000,000 VMs).
 * `vms (state, created_at, uuid)` serves the filter, both orders and the count (index-only), so
 * it replaces `vms_state_idx` rather than joining it: one index per VM state change, as before.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index vms_state_created_idx on vms (state, created_at, uuid)`.execute(db);
  await sql`drop index if exists vms_state_idx`.execute(db);
}
