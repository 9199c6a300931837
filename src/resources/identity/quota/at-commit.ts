/**
 * Quota charged at COMMIT, for the admissions of one account that come in bursts (pool hand-outs:
 * 100 users of one team at once). reserveQuota's UPDATE locks the account's quota rows from that
 * statement until the commit, so the client round trips between them (the UPDATE's answer, the
 * events, the COMMIT), slowed by a busy event loop, are paid by every concurrent admission of the
 * account in turn. Here the admission only inserts a row into `quota_charges`; a deferred
 * constraint trigger (migration 0012) applies it inside the server's COMMIT with the same ordered,
 * conditional UPDATE, so the rows are locked only for that instant. Atomic all the same: a charge
 * past a limit raises SQLSTATE NQ001 at COMMIT and the whole transaction is rolled back.
 * The caller maps that error with `quotaErrorAtCommit` after the transaction failed.
 */
import { pgCode } from '../../../db/errors.js';
import type { Executor } from '../../../db/transaction.js';
import { QUOTA_DEFAULTS, type QuotaName, type QuotaUsage, quotaExceeded } from './quota.js';

export async function chargeQuotaAtCommit(
  exec: Executor,
  account: { uuid: string; isAdmin: boolean },
  usage: QuotaUsage,
): Promise<void> {
  if (account.isAdmin) return;
  const wanted = (Object.entries(usage) as Array<[QuotaName, number]>).filter(([, n]) => n > 0);
  if (wanted.length === 0) return;
  await exec
    .insertInto('quotaCharges')
    .values({
      accountUuid: account.uuid,
      usage: JSON.stringify(Object.fromEntries(wanted)),
      defaults: JSON.stringify(Object.fromEntries(wanted.map(([name]) => [name, QUOTA_DEFAULTS[name]]))),
    })
    .execute();
}

/** The QUOTA_EXCEEDED a failed COMMIT meant, or undefined when it failed for another reason. */
export async function quotaErrorAtCommit(
  exec: Executor,
  err: unknown,
  accountUuid: string,
  usage: QuotaUsage,
) {
  if (pgCode(err) !== 'NQ001') return undefined;
  const name = (err as Error).message as QuotaName;
  return quotaExceeded(exec, accountUuid, name, usage[name] ?? 0);
}
