/**
 * How a webhook delivery is signed, so a receiver can tell it came from this Nimbus and was not
 * replayed later:
 *
 *   Nimbus-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The receiver recomputes the HMAC over the timestamp, a dot and the body bytes exactly as
 * received, compares in constant time, and refuses a timestamp too far from its clock (5 min is
 * the usual tolerance). Each attempt is signed afresh (a retry has a newer `t`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'nimbus-signature';

export function signature(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function signatureHeader(secret: string, body: string, now = new Date()): string {
  const t = Math.floor(now.getTime() / 1000);
  return `t=${t},v1=${signature(secret, t, body)}`;
}

/** What a receiver does (tests use it as one): true when the header signs `body` within `toleranceSeconds`. */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  now = new Date(),
  toleranceSeconds = 300,
): boolean {
  if (!header) return false;
  const parts = new Map(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(now.getTime() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signature(secret, t, body), 'hex');
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
