/**
 * The VM console's tokens (docs/compute.md "Console"):
 * - `installation_secrets`: secrets of this installation that every management node shares, one
 *   row per use by name (`console-token`: the HMAC key of console tokens). Made by the first node
 *   that needs one (INSERT … ON CONFLICT DO NOTHING, so two nodes racing keep the same one); no
 *   API reads this table.
 * - `console_token_uses`: the nonce of every console token that opened a console, until it
 *   expires: a token is single-use on whichever node it is presented (the insert that finds the
 *   nonce taken refuses it). Rows past their expiry are deleted as new ones come.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table installation_secrets (
      name text primary key,
      secret text not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table console_token_uses (
      nonce text primary key,
      expires_at timestamptz not null
    )`.execute(db);
  await sql`create index console_token_uses_expiry_idx on console_token_uses (expires_at)`.execute(db);
}
