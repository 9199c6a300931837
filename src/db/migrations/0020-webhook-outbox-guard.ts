/**
 * The webhook outbox trigger (0013) only while an Enabled webhook exists: every event insert paid
 * for it (a PL/pgSQL call, a transition table and a join over the webhooks, ~11 µs a statement)
 * even on a cloud with no webhook at all. Now a statement-level trigger on `webhooks` keeps
 * `events_webhook_outbox` present exactly when some webhook is Enabled: created with the first,
 * dropped with the last. Without one an event insert runs no trigger at all.
 *
 * Delivery stays exact. The sync first locks `events` (SHARE ROW EXCLUSIVE, held to its commit):
 * - the webhook change waits for the transactions that are inserting events (their events
 *   precede the webhook, as before: the 0013 join did not see an uncommitted webhook either),
 *   and an insert that comes while the change is uncommitted waits for it, then sees the trigger;
 * - two webhook changes are serialized by it, and each decides after the lock, with a fresh
 *   snapshot: the last to commit saw every change committed before it, so a first webhook made
 *   while the last other one is deleted can never be left without the trigger.
 * Webhook changes are rare admin operations; their cost is that lock, for milliseconds. The
 * webhook service changes `webhooks` before it writes events in the same transaction, so it
 * never upgrades a lock on `events` it already holds.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function webhook_outbox_sync() returns trigger language plpgsql as $$
    begin
      lock table events in share row exclusive mode;
      if exists (select 1 from webhooks where state = 'Enabled') then
        create or replace trigger events_webhook_outbox after insert on events
          referencing new table as new_events
          for each statement execute function webhook_outbox();
      else
        drop trigger if exists events_webhook_outbox on events;
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger webhooks_outbox_sync after insert or update or delete on webhooks
    for each statement execute function webhook_outbox_sync()`.execute(db);
  // as the sync would leave it: no webhook Enabled yet, no trigger on events
  await sql`
    do $$ begin
      if not exists (select 1 from webhooks where state = 'Enabled') then
        drop trigger if exists events_webhook_outbox on events;
      end if;
    end $$`.execute(db);
}
