/**
 * Quota rows are locked in one order by everything that changes them: a release (a rollback, a
 * destroy) running while an admission of the same account reserves must not deadlock. Shown with
 * two transactions stepped by hand: A reserves vm.cpu; B releases vm.num and vm.cpu (and blocks
 * on vm.cpu); A then reserves vm.num. Released in the usage's own order (vm.num first), B held
 * vm.num while waiting for vm.cpu and PostgreSQL killed one of them as a deadlock.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/database.js';
import { type DbHandle, openDb } from '../../../db/pool.js';
import { newId } from '../../../kernel/ids.js';
import { releaseQuota, reserveQuota } from './quota.js';

let t: TestDatabase;
let db: DbHandle;

before(async () => {
  t = await createTestDatabase({ max: 2 });
  db = openDb(t.url, { max: 4, applicationName: 'quota-order-test' });
});
after(async () => {
  await db.close();
  await t.drop();
});

test('a release and a reservation of one account, interleaved, both commit (rows locked in one order)', async () => {
  const account = { uuid: newId(), isAdmin: false };
  await db.db
    .insertInto('accounts')
    .values({ uuid: account.uuid, name: `q-${account.uuid}`, type: 'normal' })
    .execute();
  await db.db
    .insertInto('quotas')
    .values(
      ['vm.num', 'vm.cpu'].map((name) => ({ accountUuid: account.uuid, name, limitValue: 100, used: 5 })),
    )
    .execute();
  let step!: () => void;
  const reservedCpu = new Promise<void>((r) => {
    step = r;
  });
  const a = db.db.transaction().execute(async (tx) => {
    await reserveQuota(tx, account, { 'vm.cpu': 1 });
    step();
    // B is now waiting for a row lock
    for (;;) {
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_locks where not granted`.execute(db.db);
      if (rows[0]!.n > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await reserveQuota(tx, account, { 'vm.num': 1 });
  });
  await reservedCpu;
  const b = db.db.transaction().execute((tx) => releaseQuota(tx, account, { 'vm.num': 1, 'vm.cpu': 1 }));
  await Promise.all([a, b]);
  const rows = await db.db
    .selectFrom('quotas')
    .select(['name', 'used'])
    .where('accountUuid', '=', account.uuid)
    .orderBy('name')
    .execute();
  assert.deepEqual(
    rows.map((r) => [r.name, Number(r.used)]),
    [
      ['vm.cpu', 5],
      ['vm.num', 5],
    ],
  );
});
