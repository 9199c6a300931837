import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase } from '../../test/support/database.js';
import { migrateToLatest } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDb } from './pool.js';

test('a cloned database is fully migrated and re-running migrations is a no-op', async () => {
  const t = await createTestDatabase();
  try {
    assert.deepEqual(await migrateToLatest(t.db), []);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from schema_migrations`.execute(t.db);
    assert.ok(rows[0]!.n >= 1);
  } finally {
    await t.drop();
  }
});

test('two nodes migrating an empty database at once: exactly one applies each migration', async () => {
  const t = await createTestDatabase();
  try {
    await sql`drop schema public cascade; create schema public`.execute(t.db);
    const a = openDb(t.url, { max: 2 });
    const b = openDb(t.url, { max: 2 });
    try {
      const [ra, rb] = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
      const total = ra.length + rb.length;
      assert.equal(total, Object.keys(MIGRATIONS).length, `applied ${JSON.stringify([ra, rb])}`);
    } finally {
      await a.close();
      await b.close();
    }
  } finally {
    await t.drop();
  }
});
