/**
 * Multi-host connection strings (issue 10, item 3): parsing, the order and memory of the search
 * for the primary (with a scripted check), and — on the test PostgreSQL — a pool, a bare client
 * and a LISTEN connection that skip a host nobody listens on, and refuse a read-only server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { freePort } from './embedded.js';
import { isConnectionLost } from './errors.js';
import { type HostPort, parseMultiHostUrl, pgTarget, ServerFinder, type ServerMode } from './multi-host.js';
import { openDb } from './pool.js';

describe('parseMultiHostUrl', () => {
  test('hosts in order, default port, read-write, the other parameters kept for pg', () => {
    const u = parseMultiHostUrl(
      'postgres://nimbus:s%40cret@db1:5432,db2,10.0.0.3:6543/nimbus?sslmode=disable&target_session_attrs=read-write&options=-c%20x',
    );
    assert.deepEqual(u?.hosts, [
      { host: 'db1', port: 5432 },
      { host: 'db2', port: 5432 },
      { host: '10.0.0.3', port: 6543 },
    ]);
    assert.equal(u?.sessionAttrs, 'read-write');
    assert.deepEqual(u?.urls, [
      'postgres://nimbus:s%40cret@db1:5432/nimbus?sslmode=disable&options=-c%20x',
      'postgres://nimbus:s%40cret@db2:5432/nimbus?sslmode=disable&options=-c%20x',
      'postgres://nimbus:s%40cret@10.0.0.3:6543/nimbus?sslmode=disable&options=-c%20x',
    ]);
  });

  test('IPv6 hosts, no user, primary means read-write, no attrs means any', () => {
    const u = parseMultiHostUrl('postgresql://[::1]:5433,[fe80::2]/db?target_session_attrs=primary');
    assert.deepEqual(u?.hosts, [
      { host: '::1', port: 5433 },
      { host: 'fe80::2', port: 5432 },
    ]);
    assert.equal(u?.sessionAttrs, 'read-write');
    assert.deepEqual(u?.urls, ['postgresql://[::1]:5433/db', 'postgresql://[fe80::2]:5432/db']);
    assert.equal(parseMultiHostUrl('postgres://a,b/db')?.sessionAttrs, 'any');
  });

  test('one host, or not a postgres URL: left to pg as it is', () => {
    assert.equal(parseMultiHostUrl('postgres://u@h1:5432/db?target_session_attrs=read-write'), undefined);
    assert.equal(parseMultiHostUrl('postgres://u@h1/db'), undefined);
    assert.equal(parseMultiHostUrl('mysql://a,b/db'), undefined);
    const one = pgTarget('postgres://u@h1:5432/db');
    assert.equal(one.connectionString, 'postgres://u@h1:5432/db');
    assert.equal(one.Client, pg.Client, "pg's own client for one host");
  });

  test('bad input: an error naming the part', () => {
    assert.throws(() => parseMultiHostUrl('postgres://h1,,h2/db'), /host 2 is empty/);
    assert.throws(() => parseMultiHostUrl('postgres://h1,h2:99999/db'), /host 2 \('h2:99999'\): port/);
    assert.throws(() => parseMultiHostUrl('postgres://h1,h2:x/db'), /host 2 \('h2:x'\) is not host\[:port\]/);
    assert.throws(
      () => parseMultiHostUrl('postgres://h1,h2/db?target_session_attrs=standby'),
      /target_session_attrs=standby is not supported/,
    );
  });
});

describe('ServerFinder', () => {
  const hosts: HostPort[] = [
    { host: 'a', port: 1 },
    { host: 'b', port: 2 },
    { host: 'c', port: 3 },
  ];
  /** a finder whose check answers from `modes` (an Error: unreachable) and counts its calls */
  const scripted = (modes: Record<string, ServerMode | Error>, sessionAttrs: 'any' | 'read-write') => {
    const calls: string[] = [];
    const finder = new ServerFinder({ hosts, sessionAttrs }, async (h) => {
      calls.push(h.host);
      await new Promise((r) => setTimeout(r, 5));
      const m = modes[h.host]!;
      if (m instanceof Error) throw m;
      return m;
    });
    return { finder, calls };
  };

  test('the first read-write host in the listed order, remembered until forgotten', async () => {
    const modes: Record<string, ServerMode | Error> = {
      a: new Error('connect ECONNREFUSED'),
      b: 'read-only',
      c: 'read-write',
    };
    const { finder, calls } = scripted(modes, 'read-write');
    // a pool filling up asks many times at once: one search
    const found = await Promise.all([finder.find(), finder.find(), finder.find()]);
    assert.deepEqual(
      found.map((h) => h.host),
      ['c', 'c', 'c'],
    );
    assert.deepEqual(calls, ['a', 'b', 'c']);
    assert.equal((await finder.find()).host, 'c', 'remembered');
    assert.equal(calls.length, 3, 'no new search while the primary is known');
    // a failover: c is gone, b promoted
    modes.c = new Error('connect ECONNREFUSED');
    modes.b = 'read-write';
    finder.forget({ host: 'x', port: 9 });
    assert.equal((await finder.find()).host, 'c', 'forgetting another host changes nothing');
    finder.forget(found[0]!);
    assert.equal((await finder.find()).host, 'b');
    assert.deepEqual(calls.slice(3), ['a', 'b']);
  });

  test('no read-write host: a lost-connection error (08001) naming every host and why', async () => {
    const { finder } = scripted(
      { a: 'read-only', b: new Error('connect ECONNREFUSED 127.0.0.1:2'), c: 'read-only' },
      'read-write',
    );
    const err = await finder.find().then(
      () => assert.fail('found a server'),
      (e: unknown) => e as Error & { code?: string },
    );
    assert.equal(err.code, '08001');
    assert.ok(isConnectionLost(err));
    assert.match(err.message, /no read-write server among the database hosts/);
    assert.match(err.message, /a:1 is read-only/);
    assert.match(err.message, /b:2: connect ECONNREFUSED/);
    assert.match(err.message, /c:3 is read-only/);
  });

  test('waiting: searched again until a standby is promoted, within the time given', async () => {
    const modes: Record<string, ServerMode | Error> = {
      a: new Error('connect ECONNREFUSED'),
      b: 'read-only',
      c: new Error('connect ECONNREFUSED'),
    };
    const { finder, calls } = scripted(modes, 'read-write');
    await assert.rejects(finder.find(), /no read-write server/, 'no waiting: fails at once');
    assert.equal(calls.length, 3);
    const waited = finder.find(10_000);
    await new Promise((r) => setTimeout(r, 600));
    modes.b = 'read-write'; // Patroni promoted b
    assert.equal((await waited).host, 'b');
    assert.ok(calls.length >= 6, `searched again while waiting (${calls.length} checks)`);
    modes.b = 'read-only';
    const found = await finder.find();
    finder.forget(found);
    await assert.rejects(finder.find(300), /no read-write server/, 'gives up when the time is up');
  });

  test('any: the first host that answers, standby or not', async () => {
    const { finder } = scripted({ a: new Error('down'), b: 'read-only', c: 'read-write' }, 'any');
    assert.equal((await finder.find()).host, 'b');
  });
});

describe('multi-host URLs on a real server', () => {
  let t: TestDatabase;
  let closed: number;
  /** the test database's URL with a host nobody listens on listed first */
  let multi: string;

  before(async () => {
    t = await createTestDatabase({ max: 1 });
    closed = await freePort();
    const u = new URL(t.url);
    const user = u.username ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
    multi = `postgres://${user}127.0.0.1:${closed},${u.host}${u.pathname}?target_session_attrs=read-write`;
  });
  after(() => t?.drop());

  test('the pool, a bare client and a LISTEN connection skip the closed host', async () => {
    const h = openDb(multi, { max: 2, applicationName: 'multi-host-test' });
    try {
      const { rows } = await sql<{ db: string }>`select current_database() as db`.execute(h.db);
      assert.equal(rows[0]!.db, t.name);
      const target = pgTarget(multi);
      const listener = new target.Client({ connectionString: target.connectionString });
      await listener.connect();
      try {
        const heard = new Promise<string | undefined>((r) =>
          listener.on('notification', (m) => r(m.payload)),
        );
        await listener.query('listen multi_host_test');
        await sql`select pg_notify('multi_host_test', 'hello')`.execute(h.db);
        assert.equal(await heard, 'hello');
      } finally {
        await listener.end();
      }
    } finally {
      await h.close();
    }
  });

  test('a server that turned read-only is refused, then searched past: DATABASE_UNAVAILABLE naming it', async () => {
    const ro = await createTestDatabase({ max: 1 });
    try {
      const url = multi.replace(`/${t.name}`, `/${ro.name}`);
      const target = pgTarget(url);
      const first = new target.Client({ connectionString: target.connectionString });
      await first.connect(); // found read-write, and remembered
      await first.end();
      // what a demoted primary looks like to a new connection (a standby is read-only too)
      await ro.pool.query(`alter database ${ro.name} set default_transaction_read_only = on`);
      const refused = async () => {
        const c = new target.Client({ connectionString: target.connectionString });
        return c.connect().then(
          () => assert.fail('connected to a read-only server'),
          (e: unknown) => e as Error,
        );
      };
      const stale = await refused();
      assert.ok(isConnectionLost(stale), String(stale));
      assert.match(stale.message, /is read-only now \(no longer the primary\)/);
      // the pool's next connection searches every host again and finds none suitable
      // a 2 s connection timeout: the search for a read-write server gives up after 1.5 s
      const h = openDb(url, { max: 1, applicationName: 'multi-host-test-ro', connectTimeoutMs: 2000 });
      try {
        const err = await sql`select 1`.execute(h.db).then(
          () => assert.fail('connected to a read-only server'),
          (e: unknown) => e as Error,
        );
        assert.ok(isConnectionLost(err), String(err));
        assert.match(err.message, /no read-write server among the database hosts/);
        assert.match(err.message, /is read-only \(a standby\)/);
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
      } finally {
        await h.close();
      }
    } finally {
      await ro.drop();
    }
  });
});
