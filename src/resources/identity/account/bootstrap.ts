/**
 * First start: creates the admin account and its `admin` user. The password comes from
 * NIMBUS_ADMIN_PASSWORD, or is generated and returned so the caller can print it once.
 * Safe when several nodes start together: the unique account name decides who created it.
 */
import { randomBytes } from 'node:crypto';
import { isUniqueViolation } from '../../../db/errors.js';
import type { Db } from '../../../db/pool.js';
import { newId } from '../../../kernel/ids.js';
import { hashPassword } from './password.js';

export const ADMIN_ACCOUNT = 'admin';

export async function ensureAdmin(
  db: Db,
  password: string | undefined,
): Promise<{ created: boolean; password?: string; accountUuid: string }> {
  const existing = await db
    .selectFrom('accounts')
    .select('uuid')
    .where('name', '=', ADMIN_ACCOUNT)
    .executeTakeFirst();
  if (existing) return { created: false, accountUuid: existing.uuid };
  const generated = password ? undefined : randomBytes(12).toString('base64url');
  const accountUuid = newId();
  const passwordHash = await hashPassword(password ?? generated!);
  try {
    await db.transaction().execute(async (tx) => {
      await tx
        .insertInto('accounts')
        .values({ uuid: accountUuid, name: ADMIN_ACCOUNT, type: 'admin', description: 'the cloud operator' })
        .execute();
      await tx
        .insertInto('users')
        .values({ uuid: newId(), accountUuid, name: ADMIN_ACCOUNT, passwordHash })
        .execute();
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const row = await db
      .selectFrom('accounts')
      .select('uuid')
      .where('name', '=', ADMIN_ACCOUNT)
      .executeTakeFirstOrThrow();
    return { created: false, accountUuid: row.uuid };
  }
  return generated ? { created: true, password: generated, accountUuid } : { created: true, accountUuid };
}

/**
 * Recovery of a lost admin password (`node dist/src/main.js --reset-admin-password`): gives the
 * admin account's `admin` user a new password (the one given, or a generated one, returned so
 * the caller prints it once) and revokes every session of that user, in one transaction.
 */
export async function resetAdminPassword(db: Db, password: string | undefined): Promise<string> {
  const next = password ?? randomBytes(12).toString('base64url');
  const passwordHash = await hashPassword(next);
  await db.transaction().execute(async (tx) => {
    const user = await tx
      .selectFrom('users')
      .innerJoin('accounts', 'accounts.uuid', 'users.accountUuid')
      .select('users.uuid')
      .where('accounts.name', '=', ADMIN_ACCOUNT)
      .where('users.name', '=', ADMIN_ACCOUNT)
      .executeTakeFirst();
    if (!user) throw new Error('there is no admin account yet: start the node once to create it');
    await tx.updateTable('users').set({ passwordHash }).where('uuid', '=', user.uuid).execute();
    await tx
      .updateTable('sessions')
      .set({ revokedAt: new Date() })
      .where('userUuid', '=', user.uuid)
      .where('revokedAt', 'is', null)
      .execute();
  });
  return next;
}
