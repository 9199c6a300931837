/**
 * The pool survives its server ending connections (issue 8, item 2): a backend terminated while
 * it runs a statement (`pg_terminate_backend`, what a restart or failover does) fails that
 * statement — or the transaction it is in — with the retryable DATABASE_UNAVAILABLE, emits no
 * unhandled 'error' event (which would end this test process), and the next statements run on a
 * fresh connection. Idle connections terminated under the pool are replaced the same way.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { CloudError } from '../kernel/errors.js';
import { isConnectionLost } from './errors.js';
import { type DbHandle, openDb } from './pool.js';

let t: TestDatabase;
let db: DbHandle;
const lostSeen: Error[] = [];

before(async () => {
  t = await createTestDatabase({ max: 2 });
  db = openDb(t.url, {
    max: 4,
    applicationName: 'pool-test-victim',
    onConnectionError: (e) => lostSeen.push(e),
  });
});
after(async () => {
  await db.close();
  await t.drop();
});

const terminate = async () => {
  const { rows } = await t.pool.query(
    `select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity
       where application_name = 'pool-test-victim' and datname = $1) k`,
    [t.name],
  );
  return rows[0].n as number;
};

test('a busy connection terminated mid-statement: DATABASE_UNAVAILABLE, no crash, the next statement runs', async () => {
  const busy = sql`select pg_sleep(5)`.execute(db.db).then(
    () => undefined,
    (err: unknown) => err,
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.ok((await terminate()) >= 1, 'the busy backend was terminated');
  const err = await busy;
  assert.ok(err instanceof CloudError, `a CloudError, got ${String(err)}`);
  assert.equal(err.code, 'DATABASE_UNAVAILABLE');
  assert.equal(err.reason, 'Unavailable');
  assert.equal(err.retryable, true);
  assert.ok(isConnectionLost(err));
  const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.db);
  assert.equal(rows[0]!.one, 1, 'the pool opened a fresh connection');
});

test('a transaction whose connection is terminated fails as a whole with DATABASE_UNAVAILABLE', async () => {
  const inTx = db.db
    .transaction()
    .execute(async (tx) => {
      await sql`select 1`.execute(tx);
      await sql`select pg_sleep(5)`.execute(tx);
    })
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  await new Promise((r) => setTimeout(r, 300));
  await terminate();
  const err = await inTx;
  assert.ok(isConnectionLost(err), `lost connection, got ${String(err)}`);
  const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.db);
  assert.equal(rows[0]!.one, 1);
});

test('idle connections terminated under the pool are replaced', async () => {
  await Promise.all(Array.from({ length: 4 }, () => sql`select 1`.execute(db.db)));
  assert.ok((await terminate()) >= 1, 'idle backends were terminated');
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 6; i++) {
    const res = await sql<{ one: number }>`select 1 as one`
      .execute(db.db)
      .then((r) => r.rows[0]!.one)
      .catch((e: unknown) => e);
    // a statement may still meet a connection whose end the pool has not seen yet: it fails cleanly
    if (res instanceof Error) assert.ok(isConnectionLost(res), String(res));
    else assert.equal(res, 1);
  }
  const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.db);
  assert.equal(rows[0]!.one, 1);
  // pg reports an idle client's end as an 'error' event: heard (a node logs it), never fatal
  assert.ok(lostSeen.length >= 1, 'the lost idle connections were reported to onConnectionError');
});
