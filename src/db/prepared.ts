/**
 * Named prepared statements for the statements a node runs over and over.
 *
 * Kysely's PostgresDialect runs every statement as `client.query(text, values)`: pg sends the
 * whole text in a Parse message each time and PostgreSQL parses and plans it again. With a
 * `{ name, text, values }` config pg parses once per connection and afterwards sends only
 * Bind/Describe/Execute, and PostgreSQL reuses the parsed statement (and, once it judges a
 * generic plan as good as the custom ones, the plan). The hot path (admission, claim, journal,
 * finish, placement) is a few dozen distinct texts run thousands of times, so this saves bytes on
 * the socket and parse/plan work on the server.
 *
 * Only texts seen `minUses` times get a name, so one-off statements (DDL, query-language SQL
 * with inlined shapes) do not fill every connection's statement cache; at most `maxStatements`
 * distinct texts are named per pool. Multi-command text, transaction control, SET and DDL are
 * never named: only a single select/insert/update/delete/with statement is.
 *
 * Results are pg's own result objects either way (rows, rowCount, command), so Kysely sees the
 * same shapes.
 */
import { createHash } from 'node:crypto';
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type pg from 'pg';
import { mapConnectionLost } from './errors.js';

export interface PrepareOptions {
  /** name a text once it has been run this many times (default 3) */
  minUses?: number;
  /** at most this many distinct named texts per pool (default 500) */
  maxStatements?: number;
  /** false: never name a statement (the pool still maps lost connections) */
  prepare?: boolean;
  /**
   * runs once on every new connection before its first use; when it throws, the connection is
   * dropped and the checkout fails with its error (cluster/fence.ts: a fenced node gets none)
   */
  verify?: (client: pg.PoolClient) => Promise<void>;
}

/** A single data statement: no `;` (so no second command), and it starts with a DML keyword. */
/**
 * Statements this process has sent through any PreparingPool, for /metrics
 * (`nimbus_db_statements_total`): the benchmarks divide it by the VMs made.
 */
export const statementsSent = { count: 0 };

const NAMEABLE = /^\s*(select|insert|update|delete|with)\b/i;

/** Decides which texts get a name; shared by all the clients of one pool. */
export class StatementNamer {
  private readonly minUses: number;
  private readonly maxStatements: number;
  /** text → uses so far (-1: never nameable); cleared when it grows past SEEN_LIMIT */
  private readonly seen = new Map<string, number>();
  private readonly names = new Map<string, string>();
  private static readonly SEEN_LIMIT = 10_000;

  constructor(opts: PrepareOptions = {}) {
    this.minUses = opts.minUses ?? 3;
    this.maxStatements = opts.prepare === false ? 0 : (opts.maxStatements ?? 500);
  }

  /** The statement name for this text, or undefined to run it unnamed. */
  nameFor(text: string): string | undefined {
    const name = this.names.get(text);
    if (name !== undefined) return name;
    if (this.names.size >= this.maxStatements) return undefined;
    let uses = this.seen.get(text);
    if (uses === -1) return undefined;
    if (uses === undefined) {
      // Dynamic SQL can produce endless distinct texts: forget the counts rather than grow.
      if (this.seen.size >= StatementNamer.SEEN_LIMIT) this.seen.clear();
      if (!NAMEABLE.test(text) || text.includes(';')) {
        this.seen.set(text, -1);
        return undefined;
      }
      uses = 0;
    }
    if (++uses < this.minUses) {
      this.seen.set(text, uses);
      return undefined;
    }
    this.seen.delete(text);
    // A hash of the text: stable across connections and processes, short on the wire.
    const named = `n${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    this.names.set(text, named);
    return named;
  }

  get size(): number {
    return this.names.size;
  }
}

/**
 * A pool for PostgresDialect whose clients run the repeated statements as named prepared
 * statements. Wraps (and ends) the given pg pool. A statement or a checkout that fails because
 * the connection was lost (terminated backend, database restart, failover) rejects with the
 * retryable CloudError DATABASE_UNAVAILABLE, and that client is dropped, never reused.
 */
export class PreparingPool implements PostgresPool {
  readonly namer: StatementNamer;
  /** one wrapper per pg client: Kysely keys its connection objects by the client */
  private readonly wrappers = new WeakMap<pg.PoolClient, PreparingClient>();
  private readonly verify: PrepareOptions['verify'];

  constructor(
    private readonly pool: pg.Pool,
    opts: PrepareOptions = {},
  ) {
    this.namer = new StatementNamer(opts);
    this.verify = opts.verify;
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.pool.connect().catch((err) => {
      throw mapConnectionLost(err);
    });
    let wrapper = this.wrappers.get(client);
    if (!wrapper) {
      if (this.verify) {
        try {
          await this.verify(client);
        } catch (err) {
          client.release(err instanceof Error ? err : true); // dropped, never reused
          throw mapConnectionLost(err);
        }
      }
      wrapper = new PreparingClient(client, this.namer);
      this.wrappers.set(client, wrapper);
    }
    return wrapper;
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

class PreparingClient implements PostgresPoolClient {
  /** set when a named statement failed in a way that may leave pg's and the server's caches apart */
  private discard = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly namer: StatementNamer,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads, passed through
  query(textOrCursor: any, values?: ReadonlyArray<unknown>): any {
    statementsSent.count++;
    if (typeof textOrCursor !== 'string') return this.client.query(textOrCursor);
    const name = this.namer.nameFor(textOrCursor);
    if (name === undefined)
      return this.client.query(textOrCursor, values as unknown[]).catch((err) => {
        throw this.lost(err);
      });
    return this.client.query({ name, text: textOrCursor, values: values as unknown[] }).catch((err) => {
      // The server's statement cache and pg's record of it can disagree after: a client-side
      // error (pg closes the statement when binding fails), a statement the server no longer has
      // (26000), or a table changed under a cached `select *` / `returning *` by another node's
      // migration (0A000 "cached plan must not change result type"). The statement fails either
      // way; the connection is dropped on release so the next one starts with a clean cache.
      const code = (err as { code?: string }).code;
      if (code === undefined || code === '26000' || code === '0A000') this.discard = true;
      throw this.lost(err);
    });
  }

  private lost(err: unknown): unknown {
    const mapped = mapConnectionLost(err);
    if (mapped !== err) this.discard = true;
    return mapped;
  }

  release(): void {
    // pg destroys a client released with an error instead of returning it to the pool
    this.client.release(this.discard || undefined);
  }
}
