/**
 * Sessions: a login yields a random bearer token; only its SHA-256 is stored, so a database
 * leak reveals no usable token. Tokens expire and can be revoked. Validated tokens are cached
 * for a few seconds to keep the hot path off the database; logout evicts the local entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../../../db/pool.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { verifyPassword } from '../account/password.js';

export interface SessionInfo {
  accountUuid: string;
  userUuid: string;
  isAdmin: boolean;
  expiresAt: Date;
}

const CACHE_MS = 5_000;

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Sessions {
  private readonly cache = new Map<string, { info: SessionInfo; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly ttlSeconds: number,
  ) {}

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
    // same error whether the account, the user or the password is wrong: no account probing
    if (!row || !(await verifyPassword(password, row.passwordHash))) {
      throw new CloudError('Unauthenticated', 'LOGIN_FAILED', 'wrong account, user or password');
    }
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    await this.db
      .insertInto('sessions')
      .values({
        uuid: newId(),
        tokenHash: hashToken(token),
        userUuid: row.userUuid,
        accountUuid: row.accountUuid,
        expiresAt,
      })
      .execute();
    return {
      token,
      expiresAt: expiresAt.toISOString(),
      accountUuid: row.accountUuid,
      userUuid: row.userUuid,
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
