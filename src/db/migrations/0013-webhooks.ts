/**
 * Webhooks (docs/webhooks.md): who wants which events, and the durable outbox of their deliveries.
 * - `webhooks`: a URL, the event types it wants (exact `lease.expiring`, a family `lease.*`, or
 *   `*`), its account (an admin account's webhooks, `all_accounts`, receive every account's
 *   events; a tenant's only its own), the HMAC secret (never shown by the API), max attempts.
 * - `webhook_deliveries`: one row per (webhook, event), made by a statement-level trigger on
 *   `events` in the SAME transaction as the event: an event that commits has its deliveries,
 *   one that rolls back has none, whatever part of Nimbus wrote it and whatever crashes after.
 *   Delivered by any node: a due row is claimed with `FOR UPDATE SKIP LOCKED` and a claim
 *   deadline (`claimed_until`), so one node sends it at a time and a node that dies mid-send
 *   only delays it.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table webhooks (
      uuid uuid primary key,
      name text not null,
      description text,
      account_uuid uuid not null,
      url text not null,
      event_types jsonb not null,
      secret text not null,
      all_accounts boolean not null default false,
      max_attempts integer not null default 8 check (max_attempts between 1 and 50),
      state text not null default 'Enabled' check (state in ('Enabled', 'Disabled')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index webhooks_name_key on webhooks (account_uuid, name)`.execute(db);

  await sql`
    create table webhook_deliveries (
      uuid uuid primary key default gen_random_uuid(),
      webhook_uuid uuid not null references webhooks (uuid) on delete cascade,
      account_uuid uuid not null,
      event_id bigint not null,
      event_uuid uuid not null,
      event_type text not null,
      state text not null default 'Pending' check (state in ('Pending', 'Succeeded', 'Failed')),
      attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      claimed_by uuid,
      claimed_until timestamptz,
      last_status integer,
      last_error text,
      last_attempt_at timestamptz,
      delivered_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (webhook_uuid, event_id)
    )`.execute(db);
  await sql`create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where state = 'Pending'`.execute(
    db,
  );
  await sql`create index webhook_deliveries_account_idx on webhook_deliveries (account_uuid, created_at)`.execute(
    db,
  );
  await sql`create index webhook_deliveries_webhook_idx on webhook_deliveries (webhook_uuid, created_at)`.execute(
    db,
  );

  // one statement-level trigger: a burst of events inserted together costs one join, and with no
  // enabled webhook the join is over an empty set
  await sql`
    create function webhook_outbox() returns trigger language plpgsql as $$
    begin
      insert into webhook_deliveries (webhook_uuid, account_uuid, event_id, event_uuid, event_type)
      select w.uuid, w.account_uuid, e.id, e.uuid, e.type
      from new_events e
      join webhooks w on w.state = 'Enabled'
        and (w.all_accounts or w.account_uuid = e.account_uuid)
        and (w.event_types ? e.type or w.event_types ? '*'
             or w.event_types ? (split_part(e.type, '.', 1) || '.*'))
      on conflict (webhook_uuid, event_id) do nothing;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger events_webhook_outbox after insert on events
    referencing new table as new_events
    for each statement execute function webhook_outbox()`.execute(db);
}
