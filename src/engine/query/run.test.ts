import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseListQuery } from './parse.js';
import {
  A,
  clusters,
  db,
  hosts,
  id,
  items,
  list,
  names,
  registry,
  userA,
  useSeededDatabase,
  zones,
} from './run.fixture.js';
import { runCount } from './run.js';

useSeededDatabase();

describe('operators on own fields', () => {
  const cases: [string, string[]][] = [
    ['name=h1', ['h1']],
    ['name!=h1', ['h2', 'h3', 'h6', 'web-1', 'web-2']],
    ['cpuTotal>16', ['web-1', 'web-2']],
    ['cpuTotal>=16', ['h2', 'h3', 'web-1', 'web-2']],
    ['cpuTotal<16', ['h1', 'h6']],
    ['cpuTotal<=8', ['h1', 'h6']],
    ['memoryTotal>68719476736', ['web-1', 'web-2']],
    ['name~=web%', ['web-1', 'web-2']],
    ['name~=h_', ['h1', 'h2', 'h3', 'h6']],
    ['name!~=web%', ['h1', 'h2', 'h3', 'h6']],
    ['name?=h1,h3,nope', ['h1', 'h3']],
    ['name!?=h1,h3', ['h2', 'h6', 'web-1', 'web-2']],
    ['description=null', ['h2', 'h6', 'web-1']],
    ['description!=null', ['h1', 'h3', 'web-2']],
    // negations include NULL rows: `a=x` and `a!=x` split the table
    ['description!=rack 1', ['h2', 'h3', 'h6', 'web-1', 'web-2']],
    ['description!~=rack%', ['h2', 'h6', 'web-1', 'web-2']],
    ['description!?=rack 1,rack 2', ['h2', 'h6', 'web-1', 'web-2']],
    ['state?=Maintenance,Disabled', ['h2', 'h3', 'h6']],
    ['state~=%able%', ['h1', 'h2', 'h6', 'web-1', 'web-2']],
    ['createdAt>=2024-03-01', ['h3', 'h6', 'web-1', 'web-2']],
    ['createdAt<2024-02-01T00:00:00+00:00', ['h1']],
    ['createdAt=2024-02-01T01:00:00+01:00', ['h2']],
  ];
  for (const [q, expected] of cases) {
    test(q, async () => assert.deepEqual(await names(hosts, { q }), expected));
  }

  test('uuid equality, IN, LIKE (cast to text) and ordering', async () => {
    assert.deepEqual(await names(hosts, { q: `uuid=${id.h3}` }), ['h3']);
    assert.deepEqual(await names(hosts, { q: `uuid=${id.h3!.toUpperCase()}` }), ['h3']);
    assert.deepEqual(await names(hosts, { q: `uuid?=${id.h1},${id.h6}` }), ['h1', 'h6']);
    assert.deepEqual(await names(hosts, { q: `uuid~=%${id.h2!.slice(-12)}` }), ['h2']);
    assert.deepEqual(await names(hosts, { q: `clusterUuid=${id.c1}` }), ['h1', 'h2']);
    assert.deepEqual(await names(hosts, { q: `uuid>${id['web-1']}` }), ['h6', 'web-2']);
  });

  test('conditions are ANDed', async () => {
    assert.deepEqual(await names(hosts, { q: ['cpuTotal>=16', 'state=Enabled'] }), ['web-1', 'web-2']);
    assert.deepEqual(await names(hosts, { q: ['name=h1', 'name=h2'] }), []);
  });

  test('booleans, numerics and a self-relation', async () => {
    assert.deepEqual(await names(items, { q: 'flag=true' }), ['leaf2', 'root']);
    assert.deepEqual(await names(items, { q: 'flag!=true' }), ['leaf', 'mid']);
    assert.deepEqual(await names(items, { q: 'flag=null' }), ['leaf']);
    assert.deepEqual(await names(items, { q: 'ratio>0.4' }), ['leaf', 'mid']);
    assert.deepEqual(await names(items, { q: 'ratio<=.25' }), ['root']);
    assert.deepEqual(await names(items, { q: 'parent.name=mid' }), ['leaf', 'leaf2']);
    assert.deepEqual(await names(items, { q: 'parent.parent.flag=true' }), ['leaf', 'leaf2']);
    assert.deepEqual(await names(items, { q: 'parent.parent.parent.name=root' }), []);
    const [row] = (await list(items, { q: 'name=root' })).items;
    assert.deepEqual(row, { uuid: id.root, name: 'root', flag: true, ratio: 0.25, accountUuid: A });
  });
});

describe('nested conditions', () => {
  test('two levels up: hosts by zone', async () => {
    assert.deepEqual(await names(hosts, { q: 'cluster.zone.name=z1' }), ['h1', 'h2', 'h3', 'h6']);
    assert.deepEqual(await names(hosts, { q: 'cluster.zone.state=Disabled' }), ['web-1']);
    assert.deepEqual(await names(hosts, { q: 'cluster.zone.name!?=z1,z2' }), ['web-2']);
    assert.deepEqual(await names(hosts, { q: 'zone.description=null' }), ['web-1', 'web-2']);
  });

  test('two levels down: zones by host, each zone once', async () => {
    assert.deepEqual(await names(zones, { q: 'clusters.hosts.name=web-1' }), ['z2']);
    assert.deepEqual(await names(zones, { q: 'clusters.hosts.cpuTotal>=32' }), ['z2', 'z3']);
    assert.deepEqual(await names(zones, { q: 'clusters.hosts.name~=h%' }), ['z1']);
    assert.deepEqual(await names(zones, { q: 'clusters.name~=c%' }), ['z1', 'z2', 'z3']);
    assert.deepEqual((await list(zones, { q: 'clusters.name~=c%', count: 'true' })).total, 3);
  });

  test('round trip: hosts whose zone has a host named web-1', async () => {
    assert.deepEqual(await names(hosts, { q: 'cluster.zone.clusters.hosts.name=web-1' }), ['web-1']);
  });

  test('each condition gets its own EXISTS (to-many conditions need not meet in one row)', async () => {
    assert.deepEqual(await names(zones, { q: ['clusters.hosts.name=h1', 'clusters.hosts.name=h3'] }), ['z1']);
  });
});

describe('tags', () => {
  const cases: [string, string[]][] = [
    ['tag=env', ['c1', 'c2', 'c5']],
    ['tag=env=prod', ['c1', 'c5']],
    ['tag!=env', ['c3', 'c4']],
    ['tag!=env=prod', ['c2', 'c3', 'c4']],
    ['tag~=env=pr%', ['c1', 'c5']],
    ['tag!~=env=pr%', ['c2', 'c3', 'c4']],
    ['tag~=te%', ['c3']],
    ['tag?=env=dev,team', ['c2', 'c3']],
    ['tag!?=env=dev,team', ['c1', 'c4', 'c5']],
    ['tag=null', ['c4']],
    ['tag!=null', ['c1', 'c2', 'c3', 'c5']],
    ['tag=team=', []],
  ];
  for (const [q, expected] of cases) {
    test(q, async () => assert.deepEqual(await names(clusters, { q }), expected));
  }

  test('values containing =', async () => {
    assert.deepEqual(await names(zones, { q: 'tag=region=eu=west' }), ['z1']);
    assert.deepEqual(await names(zones, { q: 'tag=region=eu' }), []);
  });

  test('nested', async () => {
    assert.deepEqual(await names(hosts, { q: 'cluster.tag=env=prod' }), ['h1', 'h2', 'h6']);
    assert.deepEqual(await names(hosts, { q: 'cluster.zone.tag=region' }), ['h1', 'h2', 'h3', 'h6']);
    assert.deepEqual(await names(zones, { q: 'clusters.tag=env=dev' }), ['z1']);
    assert.deepEqual(await names(zones, { q: 'clusters.tag!=env' }), ['z2', 'z3']);
  });
});

describe('sorting and paging', () => {
  const byUuid = (...ns: string[]) => [...ns].sort((x, y) => (id[x]! < id[y]! ? -1 : 1));

  test('ascending and descending, ties broken by the key ascending', async () => {
    assert.deepEqual(await names(hosts, { sort: 'cpuTotal' }), [
      'h6',
      'h1',
      ...byUuid('h2', 'h3'),
      'web-1',
      'web-2',
    ]);
    assert.deepEqual(await names(hosts, { sort: '-cpuTotal' }), [
      'web-2',
      'web-1',
      ...byUuid('h2', 'h3'),
      'h1',
      'h6',
    ]);
    assert.deepEqual(await names(hosts, { sort: '-state,name' }), ['h3', 'h1', 'web-1', 'web-2', 'h2', 'h6']);
    assert.deepEqual(await names(hosts, { sort: '-createdAt' }), ['h6', 'web-2', 'web-1', 'h3', 'h2', 'h1']);
    assert.deepEqual(await names(zones, { sort: '-name' }), ['z3', 'z2', 'z1']);
    // all ties: the key alone orders
    assert.deepEqual(await names(clusters, { sort: 'state' }), byUuid('c1', 'c2', 'c3', 'c4', 'c5'));
  });

  test('pages are disjoint, stable and cover the list; count is the total', async () => {
    const seen: string[] = [];
    for (let offset = 0; offset < 8; offset += 2) {
      const page = await list(hosts, { sort: 'cpuTotal', limit: '2', offset: String(offset), count: 'true' });
      assert.equal(page.total, 6);
      assert.equal(page.limit, 2);
      assert.equal(page.offset, offset);
      seen.push(...page.items.map((i) => String(i.name)));
    }
    assert.deepEqual(seen, await names(hosts, { sort: 'cpuTotal' }));
    const none = await list(hosts, { limit: '0', count: 'true', q: 'state=Enabled' });
    assert.deepEqual(none, { items: [], limit: 0, offset: 0, total: 3 });
    assert.equal((await list(hosts, {})).total, undefined);
  });

  test('runCount ignores paging', async () => {
    const query = parseListQuery({ q: 'cpuTotal>=16', limit: '1' }, hosts, registry, userA);
    assert.equal(await runCount(db().db, hosts, query, userA), 3);
  });
});

describe('projection', () => {
  test('only the asked fields, in order', async () => {
    const { items: rows } = await list(hosts, { fields: 'name,cpuTotal', q: 'name=h1' });
    assert.deepEqual(rows, [{ name: 'h1', cpuTotal: 8 }]);
  });

  test('every field of the kind by default, camelCase', async () => {
    const [row] = (await list(hosts, { q: 'name=h2' })).items;
    assert.deepEqual(Object.keys(row!), Object.keys(hosts.fields));
    assert.equal(row!.memoryTotal, 16 * 2 ** 32);
    assert.ok(row!.createdAt instanceof Date);
    assert.equal(row!.description, null);
  });
});
