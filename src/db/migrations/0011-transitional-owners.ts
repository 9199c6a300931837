/**
 * Who owns a row left in a transitional state (issue 8, docs/engine.md "Transitional rows"):
 * - `image_cache.job_uuid`: the job copying the image (Downloading) or removing it (Deleting).
 *   Recovery and the callers waiting for the entry tell a live owner from a dead one by it: an
 *   entry whose job ended, vanished or belongs to a dead node is reclaimed, never waited out.
 * - `virtual_routers.claim_job_uuid`: the VM job that made the router row (Creating, before its
 *   appliance job is submitted) or claimed the start of its stopped appliance; the same test
 *   replaces the old fixed orphan delay.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('image_cache').addColumn('job_uuid', 'uuid').execute();
  await sql`create index image_cache_transitional_idx on image_cache (job_uuid) where state <> 'Ready'`.execute(
    db,
  );
  await db.schema.alterTable('virtual_routers').addColumn('claim_job_uuid', 'uuid').execute();
}
