import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely';
import type { Database } from '../../db/schema.js';
import { CloudError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import { parseListQuery, type RawQuery } from './parse.js';
import {
  admin,
  clusters,
  db,
  hosts,
  id,
  list,
  names,
  nodes,
  registry,
  sharedZones,
  userA,
  userB,
  useSeededDatabase,
  zones,
} from './run.fixture.js';
import { getVisibleRow, runListQuery } from './run.js';

useSeededDatabase();

describe('visibility', () => {
  test('a non-admin sees only its own rows of owned kinds', async () => {
    assert.deepEqual(await names(hosts, {}, userA), ['h1', 'h2', 'h3', 'web-1']);
    assert.deepEqual(await names(hosts, {}, userB), ['h6', 'web-2']);
    assert.equal((await list(hosts, { count: 'true' }, userB)).total, 2);
    assert.deepEqual(await names(hosts, { q: 'name=web-2' }, userA), []);
  });

  test('and only its own rows inside nested conditions', async () => {
    // z1 is A's, but c5 and h6 inside it are B's
    assert.deepEqual(await names(zones, { q: 'clusters.name=c5' }, userA), []);
    assert.deepEqual(await names(zones, { q: 'clusters.hosts.name=h6' }, userA), []);
    assert.deepEqual(await names(zones, { q: 'clusters.hosts.name=h6' }), ['z1']);
    // B sees its host, but not through A's zone
    assert.deepEqual(await names(hosts, { q: 'zone.name=z1' }, userB), []);
    assert.deepEqual(await names(hosts, { q: 'zone.name=z1' }), ['h1', 'h2', 'h3', 'h6']);
    assert.deepEqual(await names(clusters, { q: 'tag=env=prod' }, userA), ['c1']);
  });

  test('shared kinds are visible to every account', async () => {
    assert.deepEqual(await names(sharedZones, {}, userB), ['z1', 'z2', 'z3']);
  });

  test('admin-only kinds are refused to non-admins', async () => {
    await db()
      .db.insertInto('managementNodes')
      .values({ uuid: id.z1!, name: 'mn1', address: '10.9.9.9' })
      .execute();
    assert.throws(
      () => parseListQuery({}, nodes, registry, userA),
      (e) => e instanceof CloudError && e.status === 403,
    );
    const query = parseListQuery({}, nodes, registry, admin);
    assert.deepEqual((await runListQuery(db().db, registry, nodes, query, admin)).items, [
      { uuid: id.z1, name: 'mn1' },
    ]);
    await assert.rejects(
      runListQuery(db().db, registry, nodes, query, userA),
      (e) => e instanceof CloudError,
    );
    assert.equal(await getVisibleRow(db().db, nodes, id.z1!, userA), undefined);
  });

  test('getVisibleRow: own row, other account 404, admin, malformed and missing keys', async () => {
    assert.equal((await getVisibleRow(db().db, hosts, id.h1!, userA))?.name, 'h1');
    assert.equal(await getVisibleRow(db().db, hosts, id.h1!, userB), undefined);
    assert.equal((await getVisibleRow(db().db, hosts, id.h1!, admin))?.name, 'h1');
    assert.equal((await getVisibleRow(db().db, sharedZones, id.z1!, userB))?.name, 'z1');
    assert.equal(await getVisibleRow(db().db, hosts, 'not-a-uuid', admin), undefined);
    assert.equal(await getVisibleRow(db().db, hosts, "' or 1=1 --", admin), undefined);
    assert.equal(await getVisibleRow(db().db, hosts, newId(), admin), undefined);
  });
});

describe('one statement, bound parameters', () => {
  test('a list is one SQL statement, two with count, in a transaction too', async () => {
    const statements: string[] = [];
    const logged = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: db().pool }),
      plugins: [new CamelCasePlugin()],
      log: (e) => {
        // begin/commit of the transaction are not the query's statements
        if (e.level === 'query' && !/^(begin|commit)$/i.test(e.query.sql)) statements.push(e.query.sql);
      },
    });
    const raw = {
      q: ['cluster.zone.tag=region=eu=west', 'cluster.hosts.cpuTotal>1'],
      sort: '-name',
      count: 'true',
    };
    const query = parseListQuery(raw, hosts, registry, userA);
    const result = await logged
      .transaction()
      .execute((tx) => runListQuery(tx, registry, hosts, query, userA));
    assert.deepEqual(
      result.items.map((i) => i.name),
      ['h3', 'h2', 'h1'],
    );
    assert.equal(statements.length, 2);
    assert.match(statements[0]!, /exists \(select 1 as "one" from "clusters" as "t1"/);
    assert.match(statements[0]!, /"t0"."account_uuid" = \$1/);
    assert.doesNotMatch(statements.join(' '), /eu=west|region/);
    statements.length = 0;
    await runListQuery(logged, registry, hosts, parseListQuery({}, hosts, registry, userA), userA);
    assert.equal(statements.length, 1);
  });

  test('injection attempts in values are plain data', async () => {
    for (const q of [
      "name=h1' or '1'='1",
      'name=h1; drop table hosts; --',
      "name?=h1',h2'",
      "description~=it''s%",
      "cluster.zone.name=z1') or true --",
    ]) {
      assert.deepEqual(await names(hosts, { q }), [], q);
    }
    assert.deepEqual(await names(hosts, { q: "description=it's 100%" }), ['web-2']);
    assert.deepEqual(await names(clusters, { q: "tag=env=prod' or 1=1 --" }), []);
    assert.equal((await list(hosts, { count: 'true' })).total, 6);
  });

  test('injection attempts in names never reach SQL', async () => {
    const bad: RawQuery[] = [
      { q: 'name"=1' },
      { q: 'name" or 1=1 --=x' },
      { q: 'cluster.zone"."name=z1' },
      { sort: 'name; drop table hosts' },
      { sort: '-"name"' },
      { fields: 'name,(select 1)' },
      { 'limit; drop table hosts': '1' },
      { limit: '1; drop table hosts' },
    ];
    for (const raw of bad) {
      assert.throws(
        () => parseListQuery(raw, hosts, registry, admin),
        (e) => e instanceof CloudError && e.code === 'INVALID_QUERY',
        JSON.stringify(raw),
      );
    }
    assert.equal((await list(hosts, { count: 'true' })).total, 6);
  });
});
