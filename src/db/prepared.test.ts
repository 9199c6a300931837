import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase } from '../../test/support/database.js';
import { openDb } from './pool.js';
import { StatementNamer } from './prepared.js';

test('a text is named from its third use, with a stable name', () => {
  const n = new StatementNamer();
  const q = 'select * from jobs where uuid = $1';
  assert.equal(n.nameFor(q), undefined);
  assert.equal(n.nameFor(q), undefined);
  const name = n.nameFor(q);
  assert.match(name ?? '', /^n[\w-]{20}$/);
  assert.equal(n.nameFor(q), name);
  assert.equal(
    new StatementNamer({ minUses: 1 }).nameFor(q),
    name,
    'the same text gets the same name anywhere',
  );
});

test('transaction control, SET, DDL and multi-command text are never named', () => {
  const n = new StatementNamer({ minUses: 1 });
  for (const q of [
    'begin',
    'commit',
    'rollback',
    'start transaction isolation level serializable',
    'savepoint "sp1"',
    'set local statement_timeout = 5',
    'create table t (a int)',
    'alter table t add column b int',
    'select 1; select 2',
    'update t set a = 1; commit',
  ]) {
    for (let i = 0; i < 3; i++) assert.equal(n.nameFor(q), undefined, q);
  }
  assert.ok(n.nameFor(' WITH x AS (select 1) select * from x'));
  assert.ok(n.nameFor('insert into t values ($1)'));
  assert.ok(n.nameFor('delete from t'));
});

test('at most maxStatements texts are named', () => {
  const n = new StatementNamer({ minUses: 1, maxStatements: 2 });
  assert.ok(n.nameFor('select 1'));
  assert.ok(n.nameFor('select 2'));
  assert.equal(n.nameFor('select 3'), undefined);
  assert.ok(n.nameFor('select 1'), 'already named texts stay named');
  assert.equal(n.size, 2);
});

test('through Kysely: same results prepared or not, and the repeated text is prepared once per connection', async () => {
  const t = await createTestDatabase();
  const plain = openDb(t.url, { max: 1, prepare: false });
  const prepared = openDb(t.url, { max: 1, prepare: true });
  try {
    await sql`create table prep_t (id int primary key, v text)`.execute(t.db);
    const run = async (db: typeof t.db, base: number) => {
      const out: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const id = base + i;
        const ins = await db
          .insertInto('prep_t' as never)
          .values({ id, v: `x${i}` } as never)
          .executeTakeFirst();
        const upd = await db
          .updateTable('prep_t' as never)
          .set({ v: 'y' } as never)
          .where('id' as never, '=', id as never)
          .executeTakeFirst();
        const sel = await sql<{
          id: number;
          v: string;
        }>`select id - ${base} as id, v from prep_t where id = ${id}`.execute(db);
        const none = await db
          .deleteFrom('prep_t' as never)
          .where('id' as never, '=', -1 as never)
          .executeTakeFirst();
        out.push([
          ins.numInsertedOrUpdatedRows,
          upd.numUpdatedRows,
          sel.rows,
          sel.numAffectedRows,
          none.numDeletedRows,
        ]);
      }
      // a transaction around named statements
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('prep_t' as never)
          .set({ v: 'z' } as never)
          .where('id' as never, '=', base as never)
          .execute();
      });
      return out;
    };
    assert.deepEqual(await run(prepared.db, 100), await run(plain.db, 0));
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_prepared_statements where statement like '%prep_t%'`.execute(
      prepared.db,
    );
    assert.equal(rows[0]!.n, 4, 'insert, update, select and delete, once each');
  } finally {
    await plain.close();
    await prepared.close();
    await t.drop();
  }
});

test('a table changed under a prepared `select *`: that call fails, the connection is replaced', async () => {
  const t = await createTestDatabase();
  const h = openDb(t.url, { max: 1, prepare: true });
  try {
    await sql`create table prep_u (id int)`.execute(t.db);
    const select = () =>
      h.db
        .selectFrom('prep_u' as never)
        .selectAll()
        .execute();
    for (let i = 0; i < 4; i++) await select();
    await sql`alter table prep_u add column extra int`.execute(t.db);
    await assert.rejects(select(), /cached plan must not change result type/);
    assert.deepEqual(await select(), []);
  } finally {
    await h.close();
    await t.drop();
  }
});
