/**
 * Quotas: per-account limits enforced at admission, atomically. Usage lives in `quotas.used`
 * beside each limit; a reservation is one conditional UPDATE per quota name
 * (`used + n <= limit`) inside the admitting transaction, so 200 concurrent creates against a
 * limit of 10 leave exactly 10, and a refused request changes nothing. The admin account has no
 * quota. Rows are created on first use with the default limit.
 */
import { sql } from 'kysely';
import type { Executor } from '../../../db/transaction.js';
import { CloudError } from '../../../kernel/errors.js';

export const QUOTA_NAMES = [
  'vm.num',
  'vm.cpu',
  'vm.memory',
  'volume.data.num',
  'volume.capacity',
  'snapshot.num',
  'image.num',
] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];
export type QuotaUsage = Partial<Record<QuotaName, number>>;

const GiB = 1024 ** 3;
/** ZStack's defaults where it has them (vm.xml); snapshots and images by the same measure. */
export const QUOTA_DEFAULTS: Record<QuotaName, number> = {
  'vm.num': 20,
  'vm.cpu': 80,
  'vm.memory': 80 * GiB,
  'volume.data.num': 40,
  'volume.capacity': 10 * 1024 * GiB,
  'snapshot.num': 200,
  'image.num': 20,
};

async function ensureRows(exec: Executor, accountUuid: string, names: QuotaName[]): Promise<void> {
  if (names.length === 0) return;
  await exec
    .insertInto('quotas')
    .values(names.map((name) => ({ accountUuid, name, limitValue: QUOTA_DEFAULTS[name] })))
    .onConflict((oc) => oc.columns(['accountUuid', 'name']).doNothing())
    .execute();
}

/**
 * Reserves every amount or none: call it inside the admitting transaction, so a refusal rolls
 * back the amounts already reserved together with everything else. All amounts in ONE
 * conditional UPDATE: an account's quota rows are the one row set all its admissions share, so
 * the fewer statements run while they are locked, the less concurrent admissions of one account
 * wait for each other (call it late in the transaction, for the same reason). Rows are made on
 * first use with the default limit (an INSERT … ON CONFLICT DO NOTHING, which locks no existing row).
 */
export async function reserveQuota(
  exec: Executor,
  account: { uuid: string; isAdmin: boolean },
  usage: QuotaUsage,
): Promise<void> {
  if (account.isAdmin) return;
  const wanted = (Object.entries(usage) as Array<[QuotaName, number]>).filter(([, n]) => n > 0);
  if (wanted.length === 0) return;
  const apply = async (items: Array<[QuotaName, number]>) => {
    const values = sql.join(items.map(([name, amount]) => sql`(${name}::text, ${amount}::bigint)`));
    const names = sql.join(items.map(([name]) => sql`${name}::text`));
    // rows locked in name order first (the CTE), so two admissions of one account never lock
    // them in opposite orders (an UPDATE … FROM alone locks in whatever order its join runs)
    const { rows } = await sql<{ name: QuotaName }>`
      with locked as (
        select name from quotas where account_uuid = ${account.uuid} and name in (${names})
        order by name for update)
      update quotas q set used = q.used + v.amount, updated_at = now()
      from locked l, (values ${values}) as v(name, amount)
      where q.account_uuid = ${account.uuid} and q.name = l.name and q.name = v.name
        and q.used + v.amount <= q.limit_value
      returning q.name`.execute(exec);
    const done = new Set(rows.map((r) => r.name));
    return items.filter(([name]) => !done.has(name));
  };
  // rows made first (first use), so the one UPDATE below locks every row it needs in one ordered
  // pass: locking the existing ones, then making and locking the missing ones, would take them
  // out of order and two admissions could deadlock
  await ensureRows(
    exec,
    account.uuid,
    wanted.map(([name]) => name),
  );
  const refused = (await apply(wanted))[0];
  if (refused) throw await quotaExceeded(exec, account.uuid, refused[0], refused[1]);
}

/** The refusal of `amount` more of quota `name`, with the row as it stands. */
export async function quotaExceeded(
  exec: Executor,
  accountUuid: string,
  name: QuotaName,
  amount: number,
): Promise<CloudError> {
  const row = await exec
    .selectFrom('quotas')
    .select(['limitValue', 'used'])
    .where('accountUuid', '=', accountUuid)
    .where('name', '=', name)
    .executeTakeFirst();
  return new CloudError(
    'Conflict',
    'QUOTA_EXCEEDED',
    `quota ${name} exceeded: ${row?.used ?? 0} used of ${row?.limitValue ?? QUOTA_DEFAULTS[name]}, ${amount} more requested`,
    { details: { quota: name, limit: row?.limitValue, used: row?.used, requested: amount } },
  );
}

/**
 * Gives usage back (never below zero); for non-admin accounts only, like reserveQuota. One
 * statement that locks the rows in name order, as reserveQuota does: releasing them one by one
 * in the usage's own order (vm.num before vm.cpu) let a rollback and concurrent admissions of the
 * same account lock them in opposite orders and deadlock (seen with 1,000 creates of one tenant
 * on three nodes: admissions answered 500, a rollback failed).
 */
export async function releaseQuota(
  exec: Executor,
  account: { uuid: string; isAdmin: boolean },
  usage: QuotaUsage,
): Promise<void> {
  if (account.isAdmin) return;
  const items = (Object.entries(usage) as Array<[QuotaName, number]>).filter(([, n]) => n > 0);
  if (items.length === 0) return;
  const values = sql.join(items.map(([name, amount]) => sql`(${name}::text, ${amount}::bigint)`));
  const names = sql.join(items.map(([name]) => sql`${name}::text`));
  await sql`
    with locked as (
      select name from quotas where account_uuid = ${account.uuid} and name in (${names})
      order by name for update)
    update quotas q set used = greatest(q.used - v.amount, 0), updated_at = now()
    from locked l, (values ${values}) as v(name, amount)
    where q.account_uuid = ${account.uuid} and q.name = l.name and q.name = v.name`.execute(exec);
}

/** Whether an account is the admin (quotas do not apply); used by flows that only know the account uuid. */
export async function accountOf(
  exec: Executor,
  accountUuid: string,
): Promise<{ uuid: string; isAdmin: boolean }> {
  const row = await exec
    .selectFrom('accounts')
    .select('type')
    .where('uuid', '=', accountUuid)
    .executeTakeFirst();
  return { uuid: accountUuid, isAdmin: row?.type === 'admin' };
}

/**
 * Makes sure every quota name has a row (with its default limit) for one account, or for every
 * normal account when none is given, so listings show defaults too. One statement; idempotent.
 */
export async function ensureDefaultQuotas(exec: Executor, accountUuid?: string): Promise<void> {
  const defaults = sql.join(QUOTA_NAMES.map((n) => sql`(${n}::text, ${QUOTA_DEFAULTS[n]}::bigint)`));
  await sql`insert into quotas (account_uuid, name, limit_value)
    select a.uuid, d.name, d.limit_value from accounts a cross join (values ${defaults}) as d(name, limit_value)
    where a.type <> 'admin' ${accountUuid ? sql`and a.uuid = ${accountUuid}` : sql``}
    on conflict (account_uuid, name) do nothing`.execute(exec);
}
