/**
 * The delivery loop: every node runs it, and each due delivery is sent by one of them at a time.
 * One pass:
 * 1. claim up to BATCH due rows (Pending, next attempt reached, no live claim, webhook Enabled)
 *    with `FOR UPDATE SKIP LOCKED` — concurrent passes on other nodes take other rows and never
 *    wait — counting the attempt and setting a claim deadline (the request timeout plus a
 *    margin): a node that dies mid-send leaves a claim that lapses, and the row is sent again;
 * 2. POST each (in parallel) the event as JSON, signed (signature.ts), redirects not followed;
 * 3. record the outcome under the claim (`claimed_by` = this node; a lapsed claim another node
 *    took over writes nothing): a 2xx is Succeeded; otherwise the row waits
 *    min(retryMax, retryBase × 2^(attempts−1)) and is tried again, until the webhook's
 *    maxAttempts, then Failed.
 * Delivery is at least once (a crash between the receiver's answer and step 3 sends it again):
 * receivers deduplicate by the `Nimbus-Delivery` header. `now` is a parameter so tests can move
 * the retry clock.
 */
import { sql } from 'kysely';
import type { ServiceContext } from '../../service.js';
import { signatureHeader } from './signature.js';

const BATCH = 50;
const CLAIM_MARGIN_SECONDS = 30;
const ERROR_CHARS = 300;

export interface PassResult {
  claimed: number;
  succeeded: number;
  retrying: number;
  failed: number;
}

interface Claimed {
  uuid: string;
  attempts: number;
  eventType: string;
  url: string;
  secret: string;
  maxAttempts: number;
  event: Record<string, unknown> | null;
}

export function backoffSeconds(attempts: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attempts - 1));
}

export async function deliveryPass(ctx: ServiceContext, now = new Date()): Promise<PassResult> {
  const s = ctx.deps.settings;
  const node = ctx.engine.nodeId;
  const until = new Date(now.getTime() + (s.webhookTimeoutSeconds + CLAIM_MARGIN_SECONDS) * 1000);
  // the event is read with the claim (a left join: a delivery whose event is no longer stored
  // is claimed too, and given up, rather than left to fill every pass's batch)
  const { rows } = await sql<Claimed>`
    with due as (
      select d.uuid, w.url, w.secret, w.max_attempts,
        case when e.id is null then null else json_build_object('id', e.id::text, 'uuid', e.uuid,
          'type', e.type, 'at', e.at, 'resourceKind', e.resource_kind, 'resourceUuid', e.resource_uuid,
          'accountUuid', e.account_uuid, 'jobUuid', e.job_uuid, 'data', e.data) end as event
      from webhook_deliveries d
      join webhooks w on w.uuid = d.webhook_uuid and w.state = 'Enabled'
      left join events e on e.id = d.event_id
      where d.state = 'Pending' and d.next_attempt_at <= ${now}
        and (d.claimed_until is null or d.claimed_until < ${now})
      order by d.next_attempt_at
      limit ${BATCH}
      for update of d skip locked
    )
    update webhook_deliveries d
    set claimed_by = ${node}, claimed_until = ${until}, attempts = d.attempts + 1, updated_at = ${now}
    from due
    where d.uuid = due.uuid
    returning d.uuid, d.attempts, d.event_type, due.url, due.secret, due.max_attempts, due.event`.execute(
    ctx.db,
  );
  const result: PassResult = { claimed: rows.length, succeeded: 0, retrying: 0, failed: 0 };
  await Promise.all(
    rows.map(async (d) => {
      const outcome = d.event
        ? await send(d as Claimed & { event: Record<string, unknown> }, s.webhookTimeoutSeconds)
        : { status: null, error: 'the event is no longer stored' };
      const ok = outcome.status !== null && outcome.status >= 200 && outcome.status < 300;
      const gaveUp = !ok && (d.attempts >= d.maxAttempts || !d.event);
      const state = ok ? 'Succeeded' : gaveUp ? 'Failed' : 'Pending';
      const wait = backoffSeconds(d.attempts, s.webhookRetryBaseSeconds, s.webhookRetryMaxSeconds);
      await ctx.db
        .updateTable('webhookDeliveries')
        .set({
          state,
          lastStatus: outcome.status,
          lastError: ok ? null : outcome.error,
          lastAttemptAt: now,
          deliveredAt: ok ? now : null,
          nextAttemptAt: new Date(now.getTime() + (state === 'Pending' ? wait * 1000 : 0)),
          claimedBy: null,
          claimedUntil: null,
          updatedAt: now,
        })
        .where('uuid', '=', d.uuid)
        .where('claimedBy', '=', node)
        .execute();
      if (ok) result.succeeded++;
      else if (gaveUp) result.failed++;
      else result.retrying++;
    }),
  );
  return result;
}

async function send(
  d: Claimed & { event: Record<string, unknown> },
  timeoutSeconds: number,
): Promise<{ status: number | null; error: string | null }> {
  const body = JSON.stringify(d.event);
  try {
    const res = await fetch(d.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'nimbus-webhooks',
        'nimbus-event-type': d.eventType,
        'nimbus-delivery': d.uuid,
        'nimbus-attempt': String(d.attempts),
        // signed at the wall-clock time of sending (`now` is the retry clock, which tests move)
        'nimbus-signature': signatureHeader(d.secret, body),
      },
      body,
    });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel();
      return { status: res.status, error: null };
    }
    const text = (await res.text().catch(() => '')).slice(0, ERROR_CHARS);
    return { status: res.status, error: `HTTP ${res.status}${text ? `: ${text}` : ''}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutSeconds} s` : (e.cause?.code ?? e.message);
    return { status: null, error: String(why).slice(0, ERROR_CHARS) };
  }
}
