/**
 * One fresh database per test file, cloned from a migrated template (CREATE DATABASE … TEMPLATE),
 * on the PostgreSQL at DATABASE_URL (scripts/test.mjs starts an embedded one when it is unset).
 * The template's name carries a hash of the migrations, so a changed migration builds a new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateToLatest } from '../../src/db/migrate.js';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';

export function baseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run tests through `npm test` (scripts/test.mjs)');
  return url;
}

export function urlFor(database: string): string {
  const u = new URL(baseUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

function templateName(): string {
  const h = createHash('sha256');
  for (const [name, m] of Object.entries(MIGRATIONS)) h.update(name).update(String(m.up));
  return `nimbus_tpl_${h.digest('hex').slice(0, 12)}`;
}

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureTemplate(admin: pg.Client): Promise<string> {
  const tpl = templateName();
  await admin.query(`select pg_advisory_lock(hashtext('nimbus-test-template'))`);
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [tpl]);
    if (exists.rowCount === 0) {
      const building = `${tpl}_building`;
      await admin.query(`drop database if exists ${building} with (force)`);
      await admin.query(`create database ${building}`);
      const h = openDb(urlFor(building), { max: 2 });
      try {
        await migrateToLatest(h.db);
      } finally {
        await h.close();
      }
      await admin.query(`alter database ${building} rename to ${tpl}`);
    }
  } finally {
    await admin.query(`select pg_advisory_unlock(hashtext('nimbus-test-template'))`);
  }
  return tpl;
}

export interface TestDatabase extends DbHandle {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates an empty, migrated database; `drop()` closes the pool and removes it. */
export async function createTestDatabase(opts: { max?: number } = {}): Promise<TestDatabase> {
  const name = `nimbus_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(async (admin) => {
    const tpl = await ensureTemplate(admin);
    // cloning needs the template free of sessions; retry briefly if a sibling is cloning too
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`create database ${name} template ${tpl}`);
        break;
      } catch (err) {
        if (attempt >= 50 || (err as { code?: string }).code !== '55006') throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  const url = urlFor(name);
  const handle = openDb(url, { max: opts.max ?? 20 });
  return {
    ...handle,
    url,
    name,
    async drop() {
      await handle.close();
      await withAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`));
    },
  };
}
