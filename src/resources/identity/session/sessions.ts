/**
 * Sessions: a login yields a random bearer token; only its SHA-256 is stored, so a database
 * leak reveals no usable token. Tokens expire and can be revoked. Validated tokens are cached
 * for a few seconds to keep the hot path off the database; logout, and the revocations that
 * follow a password change or the deletion of a user or account, evict this node's entries at
 * once (`evict`); another node's cache honours them within CACHE_MS.
 *
 * A failed login costs the same whether or not the account and user exist: a missing user's
 * password is still checked, against a hash of the same parameters made at start-up, so the
 * answer's timing does not tell account names apart.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { hashPassword, verifyPassword } from '../account/password.js';

export interface SessionInfo {
  sessionUuid: string;
  accountUuid: string;
  userUuid: string;
  isAdmin: boolean;
  expiresAt: Date;
}

const CACHE_MS = 5_000;

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Revokes the sessions of a user (or of every user of an account) inside `tx`, so a revocation
 * commits with the change that calls for it; `except` keeps one (the session making a change).
 * Returns how many were revoked.
 */
export async function revokeSessions(
  tx: Tx | Db,
  who: { userUuid: string } | { accountUuid: string },
  except?: string,
): Promise<number> {
  let q = tx.updateTable('sessions').set({ revokedAt: new Date() }).where('revokedAt', 'is', null);
  q =
    'userUuid' in who ? q.where('userUuid', '=', who.userUuid) : q.where('accountUuid', '=', who.accountUuid);
  if (except) q = q.where('uuid', '!=', except);
  const rows = await q.returning('uuid').execute();
  return rows.length;
}

export class Sessions {
  private readonly cache = new Map<string, { info: SessionInfo; until: number }>();
  // the hash a missing user's password is checked against (same scrypt parameters as real ones)
  private readonly dummyHash: Promise<string> = hashPassword(randomBytes(16).toString('base64url'));

  constructor(
    private readonly db: Db,
    private readonly ttlSeconds: number,
  ) {}

  /** Forgets cached validations of a user's or an account's sessions (but `except`). */
  evict(who: { userUuid?: string; accountUuid?: string; except?: string }): void {
    for (const [hash, { info }] of this.cache) {
      if (who.except !== undefined && info.sessionUuid === who.except) continue;
      if (info.userUuid === who.userUuid || info.accountUuid === who.accountUuid) this.cache.delete(hash);
    }
  }

  async login(accountName: string, userName: string | undefined, password: string) {
    const row = await this.db
      .selectFrom('users')
      .innerJoin('accounts', 'accounts.uuid', 'users.accountUuid')
      .select([
        'users.uuid as userUuid',
        'users.passwordHash',
        'accounts.uuid as accountUuid',
        'accounts.type',
      ])
      .where('accounts.name', '=', accountName)
      .where('users.name', '=', userName ?? accountName)
      .executeTakeFirst();
    // same error, and the same work, whether the account, the user or the password is wrong
    const ok = await verifyPassword(password, row?.passwordHash ?? (await this.dummyHash));
    if (!row || !ok) {
      throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong account, user or password');
    }
    return this.open({ userUuid: row.userUuid, accountUuid: row.accountUuid });
  }

  /**
   * A new session for a user whose credential was checked elsewhere (an OpenStack application
   * credential's secret): the same token, hash and expiry as a password login.
   */
  async open(who: { userUuid: string; accountUuid: string }) {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    const sessionUuid = newId();
    await this.db
      .insertInto('sessions')
      .values({
        uuid: sessionUuid,
        tokenHash: hashToken(token),
        userUuid: who.userUuid,
        accountUuid: who.accountUuid,
        expiresAt,
      })
      .execute();
    return {
      token,
      expiresAt: expiresAt.toISOString(),
      accountUuid: who.accountUuid,
      userUuid: who.userUuid,
    };
  }

  async validate(token: string): Promise<SessionInfo> {
    const hash = hashToken(token);
    const cached = this.cache.get(hash);
    const now = Date.now();
    if (cached && cached.until > now && cached.info.expiresAt.getTime() > now) return cached.info;
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('accounts', 'accounts.uuid', 'sessions.accountUuid')
      .select([
        'sessions.uuid',
        'sessions.userUuid',
        'sessions.accountUuid',
        'sessions.expiresAt',
        'sessions.revokedAt',
        'accounts.type',
      ])
      .where('sessions.tokenHash', '=', hash)
      .executeTakeFirst();
    if (!row || row.revokedAt) {
      throw new CloudError(
        'Unauthenticated',
        'TOKEN_INVALID',
        'the token is unknown or was revoked; log in again',
      );
    }
    const expiresAt = new Date(row.expiresAt);
    if (expiresAt.getTime() <= now) {
      throw new CloudError('Unauthenticated', 'TOKEN_EXPIRED', 'the token has expired; log in again');
    }
    const info = {
      sessionUuid: row.uuid,
      accountUuid: row.accountUuid,
      userUuid: row.userUuid,
      isAdmin: row.type === 'admin',
      expiresAt,
    };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { info, until: now + CACHE_MS });
    return info;
  }

  async logout(token: string): Promise<void> {
    const hash = hashToken(token);
    this.cache.delete(hash);
    await this.db
      .updateTable('sessions')
      .set({ revokedAt: new Date() })
      .where('tokenHash', '=', hash)
      .execute();
  }

  /** Drops sessions that expired more than a day ago (called periodically). */
  async purgeExpired(): Promise<void> {
    await this.db
      .deleteFrom('sessions')
      .where('expiresAt', '<', new Date(Date.now() - 86_400_000))
      .execute();
  }
}
