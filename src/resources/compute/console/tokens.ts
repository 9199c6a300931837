/**
 * Console tokens: what `POST /v1/vms/{uuid}/actions/console` hands out and `/v1/console` takes.
 * A token is `v1.<claims>.<signature>`: the claims (VM, account, whether that account is the
 * admin, expiry, a random nonce) in base64url JSON, signed with HMAC-SHA256 under the
 * installation's `console-token` secret (table `installation_secrets`), so any management node
 * checks a token another issued without asking it. Invariants:
 * - a token opens at most one console: its nonce is inserted into `console_token_uses` when it is
 *   redeemed, and the insert that finds the nonce taken refuses it, on whichever node;
 * - an expired, altered or foreign token is refused before anything is looked up, and every
 *   refusal names why (CONSOLE_TOKEN_MISSING / _INVALID / _EXPIRED / _USED, reason Unauthenticated);
 * - the secret never leaves this module: not in a token, an error, or a log line.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../../../db/pool.js';
import { CloudError } from '../../../kernel/errors.js';

/** how long a token may wait before it opens its console */
export const CONSOLE_TOKEN_TTL_MS = 60_000;
const SECRET_NAME = 'console-token';
const VERSION = 'v1';
/** used nonces are deleted this long after their expiry (a margin for clocks of other nodes) */
const PURGE_AFTER_MS = 5 * 60_000;
const PURGE_EVERY_MS = 60_000;

export interface ConsoleClaims {
  vmUuid: string;
  accountUuid: string;
  isAdmin: boolean;
  /** ms since the epoch */
  expiresAt: number;
  nonce: string;
}

function refused(code: string, message: string, details?: Record<string, unknown>): CloudError {
  return new CloudError('Unauthenticated', code, message, details === undefined ? {} : { details });
}

function claimsOf(text: string): ConsoleClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 5) return undefined;
  const [vmUuid, accountUuid, admin, expiresAt, nonce] = value as unknown[];
  if (typeof vmUuid !== 'string' || typeof accountUuid !== 'string' || typeof nonce !== 'string')
    return undefined;
  if ((admin !== 0 && admin !== 1) || typeof expiresAt !== 'number') return undefined;
  return { vmUuid, accountUuid, isAdmin: admin === 1, expiresAt, nonce };
}

export class ConsoleTokens {
  private key: Promise<Buffer> | undefined;
  private lastPurge = 0;
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(
    private readonly db: Db,
    opts: { ttlMs?: number; now?: () => number } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.ttlMs = opts.ttlMs ?? CONSOLE_TOKEN_TTL_MS;
  }

  /** The installation's key: made by the first node that needs it, then read by every other. */
  private secret(): Promise<Buffer> {
    this.key ??= (async () => {
      await this.db
        .insertInto('installationSecrets')
        .values({ name: SECRET_NAME, secret: randomBytes(32).toString('hex') })
        .onConflict((c) => c.column('name').doNothing())
        .execute();
      const row = await this.db
        .selectFrom('installationSecrets')
        .select('secret')
        .where('name', '=', SECRET_NAME)
        .executeTakeFirstOrThrow();
      return Buffer.from(row.secret, 'hex');
    })();
    // a failed read (database away) is tried again next time, not remembered
    this.key.catch(() => {
      this.key = undefined;
    });
    return this.key;
  }

  private async sign(body: string): Promise<string> {
    return createHmac('sha256', await this.secret())
      .update(`${VERSION}.${body}`)
      .digest('base64url');
  }

  async issue(
    vmUuid: string,
    who: { accountUuid: string; isAdmin: boolean },
  ): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = this.now() + this.ttlMs;
    const claims = [
      vmUuid,
      who.accountUuid,
      who.isAdmin ? 1 : 0,
      expiresAt,
      randomBytes(16).toString('base64url'),
    ];
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return { token: `${VERSION}.${body}.${await this.sign(body)}`, expiresAt: new Date(expiresAt) };
  }

  /** The token's claims once it is checked and spent; a refusal says which rule it broke. */
  async redeem(token: string | undefined): Promise<ConsoleClaims> {
    if (token === undefined || token === '') {
      throw refused(
        'CONSOLE_TOKEN_MISSING',
        'open the console with ?token=<token> (from POST /v1/vms/{uuid}/actions/console)',
      );
    }
    const [version, body, signature, ...rest] = token.split('.');
    const invalid = refused(
      'CONSOLE_TOKEN_INVALID',
      'the console token was not issued by this cloud (malformed, altered or signed with another key)',
    );
    if (version !== VERSION || body === undefined || signature === undefined || rest.length > 0)
      throw invalid;
    const expected = Buffer.from(await this.sign(body));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid;
    const claims = claimsOf(body);
    if (claims === undefined) throw invalid;
    if (claims.expiresAt <= this.now()) {
      throw refused('CONSOLE_TOKEN_EXPIRED', 'the console token has expired: ask for a new one', {
        expiredAt: new Date(claims.expiresAt).toISOString(),
      });
    }
    const used = await this.db
      .insertInto('consoleTokenUses')
      .values({ nonce: claims.nonce, expiresAt: new Date(claims.expiresAt) })
      .onConflict((c) => c.column('nonce').doNothing())
      .executeTakeFirst();
    if (used.numInsertedOrUpdatedRows === 0n) {
      throw refused(
        'CONSOLE_TOKEN_USED',
        'the console token was used already (one console per token): ask for a new one',
      );
    }
    await this.purge();
    return claims;
  }

  /** Drops the nonces of long-expired tokens (at most once a minute per node). */
  private async purge(): Promise<void> {
    const now = this.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    await this.db
      .deleteFrom('consoleTokenUses')
      .where('expiresAt', '<', new Date(now - PURGE_AFTER_MS))
      .execute();
  }
}
