/**
 * The caller the platform acts as when it works for an account on its own (a pool making its warm
 * stock): the account itself, through its oldest user, with a request id naming the work.
 */
import type { Db } from '../../db/pool.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError } from '../../kernel/errors.js';

export async function systemCallerFor(db: Db, accountUuid: string, requestId: string): Promise<Caller> {
  const row = await db
    .selectFrom('accounts as a')
    .innerJoin('users as u', 'u.accountUuid', 'a.uuid')
    .select(['a.uuid as accountUuid', 'u.uuid as userUuid', 'a.type'])
    .where('a.uuid', '=', accountUuid)
    .orderBy('u.createdAt')
    .limit(1)
    .executeTakeFirst();
  if (!row)
    throw new CloudError('NotFound', 'ACCOUNT_NOT_FOUND', `account ${accountUuid} has no user to act as`);
  return { accountUuid: row.accountUuid, userUuid: row.userUuid, isAdmin: row.type === 'admin', requestId };
}
