/**
 * Who holds a virtual-router claim (docs/engine.md "Transitional rows"): a router row made by a
 * VM job before its appliance job exists, or a start claimed by a VM job before the start job
 * exists, names that VM job in `claim_job_uuid`. A claim is orphaned once that job is gone
 * (ended, vanished, its node dead); a row with no recorded claimer after ORPHAN_MS.
 */

/** a claim naming no claimer (a row from before claimers were recorded) is orphaned after this long */
export const ORPHAN_MS = 60_000;

/** who waits: the VM job (it owns a row or claim it makes) and how to tell whether an owner lives */
export interface RouterCaller {
  jobUuid: string | null;
  gone(jobUuid: string): Promise<boolean>;
}

/** Whether the claim on a row is orphaned: its maker job is gone, or (none recorded) it is old. */
export async function claimOrphaned(
  caller: RouterCaller,
  row: { claimJobUuid: string | null; updatedAt: Date },
): Promise<boolean> {
  if (row.claimJobUuid) return row.claimJobUuid !== caller.jobUuid && (await caller.gone(row.claimJobUuid));
  return Date.now() - new Date(row.updatedAt).getTime() > ORPHAN_MS;
}
