/**
 * A database connection of its own for the operator's routes (health, readiness, the /metrics
 * inventory), so they never wait behind user work queued for the main pool: under overload that
 * queue is what made /v1/health take 80 s.
 * Invariants: at most 2 connections; every query is bounded (connect and query timeouts); callers
 * that ask at once share one round trip (single-flight), so a flood of health checks costs one.
 */
import pg from 'pg';
import { pgTarget } from '../db/multi-host.js';

export const PROBE_TIMEOUT_MS = 2000;

export class DbProbe {
  private readonly pool: pg.Pool;
  private pinging: Promise<void> | undefined;

  constructor(connectionString: string, timeoutMs = PROBE_TIMEOUT_MS) {
    // a multi-host URL: the probe follows the primary too (a standby answering is no health)
    const target = pgTarget(connectionString);
    this.pool = new pg.Pool({
      connectionString: target.connectionString,
      Client: target.Client,
      max: 2,
      application_name: 'nimbus-probe',
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      // kept open: a health check should not pay for a new connection every time
      idleTimeoutMillis: 0,
      allowExitOnIdle: true,
    });
    // a lost connection fails the check in progress; the pool opens a new one for the next
    this.pool.on('error', () => {});
  }

  /** Resolves when the database answers `select 1`; rejects after the timeout or on error. */
  ping(): Promise<void> {
    this.pinging ??= this.pool
      .query('select 1')
      .then(() => undefined)
      .finally(() => {
        this.pinging = undefined;
      });
    return this.pinging;
  }

  /** Runs read-only statements (several, `;`-separated, in one round trip) and returns each one's rows. */
  async rows(text: string): Promise<Array<Array<Record<string, unknown>>>> {
    const result = (await this.pool.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(result) ? result : [result]).map((r) => r.rows);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
