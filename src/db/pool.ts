/** The Kysely instance over a pg pool; the only place that configures the driver. */
import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { pgTarget } from './multi-host.js';
import { PreparingPool } from './prepared.js';
import type { Database } from './schema.js';

// int8 (bigint: memory, capacity, counts) as JS numbers: exact up to 2^53 bytes (8 PiB).
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));
// numeric as numbers too (ratios)
pg.types.setTypeParser(1700, (v) => Number.parseFloat(v));

export type Db = Kysely<Database>;

export interface DbHandle {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * A pool that survives its server: PostgreSQL ending a connection (pg_terminate_backend, a
 * restart, a failover) makes pg emit 'error' on that client — on the pool for an idle one, on the
 * client itself for one checked out. Both are listened to here (an unheard 'error' event ends
 * the process), the broken client is dropped, and the statement it ran fails with the retryable
 * DATABASE_UNAVAILABLE (prepared.ts); the next checkout opens a fresh connection — with a
 * multi-host URL, to whichever server is the primary by then (multi-host.ts).
 */
export function openDb(
  connectionString: string,
  opts: {
    max?: number;
    applicationName?: string;
    prepare?: boolean;
    /** told about every lost connection (the node logs it) */
    onConnectionError?: (err: Error) => void;
    /** a checkout waits this long for a connection before failing (default 30 s) */
    connectTimeoutMs?: number;
    /** checks every new connection before its first use (PreparingPool `verify`) */
    verify?: (client: pg.PoolClient) => Promise<void>;
  } = {},
): DbHandle {
  // a multi-host URL (a replicated PostgreSQL): every new connection goes to the primary
  const target = pgTarget(connectionString);
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    Client: target.Client,
    max: opts.max ?? 20,
    application_name: opts.applicationName ?? 'nimbus',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 30_000,
  });
  const onError = (err: Error) => opts.onConnectionError?.(err);
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  // Repeated statements run as named prepared statements (see prepared.ts);
  // NIMBUS_DB_PREPARE=0 turns that off (to compare, or should a server-side pooler not keep them).
  const prepare = opts.prepare ?? process.env.NIMBUS_DB_PREPARE !== '0';
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: new PreparingPool(pool, { prepare, ...(opts.verify ? { verify: opts.verify } : {}) }),
    }),
    plugins: [new CamelCasePlugin()],
  });
  return {
    db,
    pool,
    async close() {
      await db.destroy();
    },
  };
}
