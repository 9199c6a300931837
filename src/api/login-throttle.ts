/**
 * Failed-login throttling, per login name (account/user) and per source address: after
 * `perName` failures within `windowMs` for one name, or `perSource` from one address, further
 * attempts are refused with 429 LOGIN_THROTTLED (Retry-After) until the oldest failure leaves
 * the window, whether or not the password would be right; a success clears the name's count.
 * Names are counted whether or not they exist, so throttling does not tell them apart either.
 *
 * Counters live in memory, per management node: a failed login writes nothing to the database,
 * so an attacker cannot turn guessing into database load, and no schema change is needed. The
 * price: behind a load balancer over N nodes an attacker gets up to N × the budget per window.
 * The per-source limit is higher than the per-name one because many users may share an address
 * (NAT, or every request when a proxy's address is all the node sees). Memory is bounded: at
 * most MAX_KEYS names and addresses are tracked; the oldest are forgotten first.
 */
import { CloudError } from '../kernel/errors.js';

export interface ThrottleLimits {
  perName: number;
  perSource: number;
  windowMs: number;
}

export const DEFAULT_LIMITS: ThrottleLimits = { perName: 5, perSource: 20, windowMs: 60_000 };
const MAX_KEYS = 100_000;

export class LoginThrottle {
  // key → times of recent failures, oldest first
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: ThrottleLimits = DEFAULT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws LOGIN_THROTTLED when either the name or the source is over its budget. */
  check(name: string, source: string): void {
    const wait = Math.max(
      this.waitMs(`name:${name}`, this.limits.perName),
      this.waitMs(`source:${source}`, this.limits.perSource),
    );
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new CloudError(
        'Throttled',
        'LOGIN_THROTTLED',
        `too many failed logins; try again in ${seconds} s`,
        { details: { retryAfterSeconds: seconds } },
      );
    }
  }

  failed(name: string, source: string): void {
    this.record(`name:${name}`);
    this.record(`source:${source}`);
  }

  succeeded(name: string): void {
    this.failures.delete(`name:${name}`);
  }

  private recent(key: string): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    const since = this.now() - this.limits.windowMs;
    while (list.length > 0 && list[0]! <= since) list.shift();
    if (list.length === 0) this.failures.delete(key);
    return list;
  }

  private waitMs(key: string, limit: number): number {
    const list = this.recent(key);
    if (list.length < limit) return 0;
    // refused until enough failures leave the window to fall below the limit
    return list[list.length - limit]! + this.limits.windowMs - this.now();
  }

  private record(key: string): void {
    const list = this.recent(key);
    list.push(this.now());
    // re-inserted so Map order is least recently failed first
    this.failures.delete(key);
    this.failures.set(key, list);
    while (this.failures.size > MAX_KEYS) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }
}
