/** The Kysely instance over a pg pool; the only place that configures the driver. */
import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
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

export function openDb(
  connectionString: string,
  opts: { max?: number; applicationName?: string; prepare?: boolean } = {},
): DbHandle {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 20,
    application_name: opts.applicationName ?? 'nimbus',
    idleTimeoutMillis: 30_000,
  });
  // An idle client that loses its server must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // Repeated statements run as named prepared statements (see prepared.ts);
  // NIMBUS_DB_PREPARE=0 turns that off (to compare, or should a server-side pooler not keep them).
  const prepare = opts.prepare ?? process.env.NIMBUS_DB_PREPARE !== '0';
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: prepare ? new PreparingPool(pool) : pool }),
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
