import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloudError, type FieldProblem } from '../../kernel/errors.js';
import { type Condition, type ListQuery, MAX_CONDITIONS, parseListQuery, type RawQuery } from './parse.js';
import { createRegistry, type KindSchema } from './schema.js';

const U1 = '0190a0b0-0000-7000-8000-000000000001';
const U2 = '0190a0b0-0000-7000-8000-000000000002';

const zones: KindSchema = {
  kind: 'zones',
  table: 'zones',
  visibility: 'owned',
  taggable: true,
  fields: { uuid: 'uuid', name: 'string', state: { enum: ['Enabled', 'Disabled'] }, createdAt: 'timestamp' },
  relations: { clusters: { kind: 'clusters', local: 'uuid', remote: 'zoneUuid', many: true } },
};
const clusters: KindSchema = {
  kind: 'clusters',
  table: 'clusters',
  visibility: 'owned',
  taggable: true,
  fields: { uuid: 'uuid', name: 'string', zoneUuid: 'uuid' },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    hosts: { kind: 'hosts', local: 'uuid', remote: 'clusterUuid', many: true },
    secret: { kind: 'secrets', local: 'uuid', remote: 'uuid' },
  },
};
const hosts: KindSchema = {
  kind: 'hosts',
  table: 'hosts',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    name: 'string',
    cpuTotal: 'int',
    ratio: 'number',
    enabled: 'boolean',
    createdAt: 'timestamp',
    state: { enum: ['Enabled', 'Disabled', 'Maintenance'] },
  },
  relations: {
    cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' },
    peer: { kind: 'hosts', local: 'uuid', remote: 'uuid' },
  },
  defaultSort: '-createdAt',
};
const secrets: KindSchema = {
  kind: 'secrets',
  table: 'sessions',
  visibility: 'admin',
  fields: { uuid: 'uuid' },
};
const registry = createRegistry([zones, clusters, hosts, secrets]);
const user = { accountUuid: U1, isAdmin: false };
const admin = { accountUuid: U2, isAdmin: true };

function parse(raw: RawQuery, schema = hosts, scope = user): ListQuery {
  return parseListQuery(raw, schema, registry, scope);
}

function one(q: string, schema = hosts, scope = user): Condition {
  const c = parse({ q }, schema, scope).conditions;
  assert.equal(c.length, 1);
  return c[0]!;
}

function problems(raw: RawQuery, schema = hosts, scope = user): FieldProblem[] {
  try {
    parse(raw, schema, scope);
  } catch (err) {
    assert.ok(err instanceof CloudError, String(err));
    assert.equal(err.code, 'INVALID_QUERY');
    assert.equal(err.reason, 'Invalid');
    return (err.details as { fields: FieldProblem[] }).fields;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be rejected`);
}

function rejects(raw: RawQuery, field: string, pattern: RegExp, schema = hosts, scope = user): void {
  const ps = problems(raw, schema, scope);
  assert.equal(ps.length, 1, JSON.stringify(ps));
  assert.equal(ps[0]!.field, field);
  assert.match(ps[0]!.problem, pattern);
}

describe('operators', () => {
  const cases: [string, string, unknown[]][] = [
    ['name=a', '=', ['a']],
    ['name!=a', '!=', ['a']],
    ['cpuTotal>4', '>', [4]],
    ['cpuTotal>=4', '>=', [4]],
    ['cpuTotal<4', '<', [4]],
    ['cpuTotal<=-4', '<=', [-4]],
    ['name~=h%', '~=', ['h%']],
    ['name!~=h%', '!~=', ['h%']],
    ['name?=a,b,c', '?=', ['a', 'b', 'c']],
    ['name!?=a,b', '!?=', ['a', 'b']],
    ['name=null', '=null', []],
    ['name!=null', '!=null', []],
  ];
  for (const [q, op, values] of cases) {
    test(q, () => {
      const c = one(q);
      assert.equal(c.type, 'field');
      assert.equal(c.op, op);
      assert.deepEqual(c.type === 'field' && c.values, values);
      assert.deepEqual(c.path, []);
    });
  }

  test('longest match and =null only when nothing follows', () => {
    const at = (q: string) => {
      const c = one(q);
      return c.type === 'field' ? [c.op, c.values] : [];
    };
    assert.deepEqual(at('name!=nullx'), ['!=', ['nullx']]);
    assert.deepEqual(at('name=nullx'), ['=', ['nullx']]);
    assert.deepEqual(at('name=null '), ['=', ['null ']]);
    assert.deepEqual(at('name!?=null'), ['!?=', ['null']]);
    assert.deepEqual(at('name<==x'), ['<=', ['=x']]);
    assert.deepEqual(at('name>=='), ['>=', ['=']]);
    assert.deepEqual(at('name~==%'), ['~=', ['=%']]);
    assert.deepEqual(at('name!~=!'), ['!~=', ['!']]);
    assert.deepEqual(at('name=a=b=c'), ['=', ['a=b=c']]);
    assert.deepEqual(at('name=='), ['=', ['=']]);
    assert.deepEqual(at('name==null'), ['=', ['=null']]);
    assert.deepEqual(at('name='), ['=', ['']]);
    assert.deepEqual(at('name?=a=1,b=2'), ['?=', ['a=1', 'b=2']]);
  });
});

describe('values by type', () => {
  test('converted', () => {
    const v = (q: string) => {
      const c = one(q);
      return c.type === 'field' ? c.values : [];
    };
    assert.deepEqual(v(`uuid=${U1.toUpperCase()}`), [U1]);
    assert.deepEqual(v('cpuTotal?=1,+2,-3'), [1, 2, -3]);
    assert.deepEqual(v('ratio>=1.5e2'), [150]);
    assert.deepEqual(v('ratio<.5'), [0.5]);
    assert.deepEqual(v('enabled=true'), [true]);
    assert.deepEqual(v('enabled!=false'), [false]);
    assert.deepEqual(v('state?=Enabled,Maintenance'), ['Enabled', 'Maintenance']);
    assert.deepEqual(v('createdAt>2024-05-01'), [new Date('2024-05-01T00:00:00Z')]);
    assert.deepEqual(v('createdAt>2024-05-01T10:00:00+02:00'), [new Date('2024-05-01T08:00:00Z')]);
    // no offset: UTC, not the server's time zone
    assert.deepEqual(v('createdAt<2024-05-01T10:00'), [new Date('2024-05-01T10:00:00Z')]);
    // LIKE patterns are text, not checked against the type
    assert.deepEqual(v('uuid~=0190%'), ['0190%']);
    assert.deepEqual(v('state~=En%'), ['En%']);
  });

  const bad: [string, RegExp][] = [
    ['uuid=abc', /'abc' is not a uuid/],
    ['uuid?=' + U1 + ',nope', /'nope' is not a uuid/],
    ['cpuTotal=1.5', /not an integer/],
    ['cpuTotal=9007199254740993', /not an integer/],
    ['cpuTotal=', /'' is not an integer/],
    ['ratio=0x10', /not a number/],
    ['ratio=Infinity', /not a number/],
    ['ratio= 1', /not a number/],
    ['enabled=yes', /not a boolean/],
    ['enabled>true', /does not apply to boolean/],
    ['createdAt>yesterday', /not an ISO 8601 timestamp/],
    ['createdAt>2024-13-01', /not an ISO 8601 timestamp/],
    ['createdAt>1', /not an ISO 8601 timestamp/],
    ['state=Broken', /'Broken' is not one of Enabled, Disabled, Maintenance/],
    ['cpuTotal~=1%', /needs a text field, not int/],
    ['enabled!~=t%', /needs a text field, not boolean/],
    ['createdAt~=2024%', /needs a text field, not timestamp/],
  ];
  for (const [q, pattern] of bad) test(`rejects ${q}`, () => rejects({ q }, 'q', pattern));

  test('every bad element of a list is reported', () => {
    const ps = problems({ q: 'cpuTotal?=1,x,2,y' });
    assert.deepEqual(
      ps.map((p) => p.problem),
      ["'x' is not an integer, in 'cpuTotal?=1,x,2,y'", "'y' is not an integer, in 'cpuTotal?=1,x,2,y'"],
    );
  });
});

describe('nested fields', () => {
  test('to-one chains', () => {
    const c = one('cluster.zone.name=z1');
    assert.equal(c.type, 'field');
    assert.deepEqual(
      c.path.map((h) => [h.name, h.schema.kind]),
      [
        ['cluster', 'clusters'],
        ['zone', 'zones'],
      ],
    );
    assert.equal(c.type === 'field' && c.field, 'name');
  });

  test('to-many chains and self relations', () => {
    const c = one('clusters.hosts.cpuTotal>2', zones);
    assert.deepEqual(
      c.path.map((h) => [h.name, h.relation.many === true]),
      [
        ['clusters', true],
        ['hosts', true],
      ],
    );
    assert.deepEqual(
      one('peer.peer.peer.peer.name=x').path.map((h) => h.schema.kind),
      ['hosts', 'hosts', 'hosts', 'hosts'],
    );
  });

  test('depth is limited to four relations', () => {
    rejects({ q: 'peer.peer.peer.peer.peer.name=x' }, 'q', /follows 5 relations; at most 4/);
  });

  test('the last segment is typed by the final kind', () => {
    rejects({ q: 'cluster.zone.state=Nope' }, 'q', /'Nope' is not one of Enabled, Disabled/);
    rejects({ q: 'cluster.zone.cpuTotal=1' }, 'q', /unknown field 'cpuTotal'.*fields of zones: uuid, name/);
  });

  test('unknown relations, including fields used as relations', () => {
    rejects({ q: 'rack.name=x' }, 'q', /unknown relation 'rack' of hosts.*relations of hosts: cluster, peer/);
    rejects({ q: 'name.length=3' }, 'q', /unknown relation 'name' of hosts/);
    rejects(
      { q: 'cluster.zone.rack.name=x' },
      'q',
      /unknown relation 'rack' of zones.*relations of zones: clusters/,
    );
  });

  test('admin kinds behind a relation are invisible to non-admins, followable by admins', () => {
    const ps = problems({ q: 'secret.uuid=' + U1 }, clusters);
    assert.equal(ps.length, 1);
    assert.match(ps[0]!.problem, /unknown relation 'secret' of clusters/);
    assert.doesNotMatch(ps[0]!.problem, /relations of clusters:.*secret/);
    assert.equal(one('secret.uuid=' + U1, clusters, admin).path[0]!.schema.kind, 'secrets');
  });
});

describe('tags', () => {
  const tag = (q: string, schema = clusters) => {
    const c = one(q, schema);
    assert.equal(c.type, 'tag');
    return c.type === 'tag' ? [c.op, c.tags, c.path.map((h) => h.name)] : [];
  };

  test('forms', () => {
    assert.deepEqual(tag('tag=env'), ['=', [{ key: 'env' }], []]);
    assert.deepEqual(tag('tag=env=prod'), ['=', [{ key: 'env', value: 'prod' }], []]);
    assert.deepEqual(tag('tag=env=a=b'), ['=', [{ key: 'env', value: 'a=b' }], []]);
    assert.deepEqual(tag('tag=env='), ['=', [{ key: 'env', value: '' }], []]);
    assert.deepEqual(tag('tag!=env'), ['!=', [{ key: 'env' }], []]);
    assert.deepEqual(tag('tag!=env=prod'), ['!=', [{ key: 'env', value: 'prod' }], []]);
    assert.deepEqual(tag('tag~=env=pr%'), ['~=', [{ key: 'env', value: 'pr%' }], []]);
    assert.deepEqual(tag('tag!~=env=pr%'), ['!~=', [{ key: 'env', value: 'pr%' }], []]);
    assert.deepEqual(tag('tag?=env=prod,env=dev,owner'), [
      '?=',
      [{ key: 'env', value: 'prod' }, { key: 'env', value: 'dev' }, { key: 'owner' }],
      [],
    ]);
    assert.deepEqual(tag('tag!?=env=prod'), ['!?=', [{ key: 'env', value: 'prod' }], []]);
    assert.deepEqual(tag('tag=null'), ['=null', [], []]);
    assert.deepEqual(tag('tag!=null'), ['!=null', [], []]);
  });

  test('at the end of a nested path', () => {
    assert.deepEqual(tag('cluster.tag=env=prod', hosts), ['=', [{ key: 'env', value: 'prod' }], ['cluster']]);
    assert.deepEqual(tag('cluster.zone.tag!=env', hosts), ['!=', [{ key: 'env' }], ['cluster', 'zone']]);
  });

  test('bad tag conditions', () => {
    rejects({ q: 'tag=env' }, 'q', /unknown field 'tag'/, hosts);
    rejects({ q: 'tag>env' }, 'q', /tags take .* not '>'/, clusters);
    rejects({ q: 'tag==prod' }, 'q', /a tag needs a key/, clusters);
    rejects({ q: 'tag?=a,,b' }, 'q', /a tag needs a key/, clusters);
  });
});

describe('sort, paging, count and fields', () => {
  test('defaults', () => {
    assert.deepEqual(parse({}, zones), {
      kind: 'zones',
      conditions: [],
      sort: [{ field: 'uuid', desc: false }],
      limit: 100,
      offset: 0,
      count: false,
    });
    assert.deepEqual(parse({}, hosts).sort, [
      { field: 'createdAt', desc: true },
      { field: 'uuid', desc: false },
    ]);
  });

  test('explicit values', () => {
    const q = parse({
      sort: '-cpuTotal,name',
      limit: '1000',
      offset: '20',
      count: 'true',
      fields: 'name,uuid,name',
    });
    assert.deepEqual(q.sort, [
      { field: 'cpuTotal', desc: true },
      { field: 'name', desc: false },
      { field: 'uuid', desc: false },
    ]);
    assert.equal(q.limit, 1000);
    assert.equal(q.offset, 20);
    assert.equal(q.count, true);
    assert.deepEqual(q.fields, ['name', 'uuid']);
    assert.equal(parse({ limit: '0', count: 'false' }).limit, 0);
    assert.equal(parse({ count: 'false' }).count, false);
    // the key given explicitly keeps its direction and is not appended again
    assert.deepEqual(parse({ sort: '-uuid,name' }).sort, [
      { field: 'uuid', desc: true },
      { field: 'name', desc: false },
    ]);
  });

  test('undefined parameters are ignored', () => {
    assert.equal(parse({ q: undefined, colour: undefined }).conditions.length, 0);
  });

  const bad: [RawQuery, string, RegExp][] = [
    [{ limit: '1001' }, 'limit', /must be an integer from 0 to 1000/],
    [{ limit: '-1' }, 'limit', /must be an integer from 0 to 1000/],
    [{ limit: '1.5' }, 'limit', /must be an integer/],
    [{ limit: '' }, 'limit', /must be an integer/],
    [{ limit: ['1', '2'] }, 'limit', /only once/],
    [{ offset: '-5' }, 'offset', /non-negative integer/],
    [{ offset: 'ten' }, 'offset', /non-negative integer/],
    [{ offset: '99999999999999999999' }, 'offset', /non-negative integer/],
    [{ count: 'yes' }, 'count', /true or false/],
    [{ sort: 'colour' }, 'sort', /cannot sort by 'colour'/],
    [{ sort: 'cluster.name' }, 'sort', /cannot sort by 'cluster.name'/],
    [{ sort: '' }, 'sort', /cannot sort by ''/],
    [{ sort: ['name', 'uuid'] }, 'sort', /only once/],
    [{ fields: 'name,colour' }, 'fields', /unknown field 'colour'/],
    [{ colour: 'red' }, 'colour', /unknown parameter \(known: q, sort/],
    [{ q: '' }, 'q', /'' is not <field><operator><value>/],
    [{ q: 'name' }, 'q', /'name' is not <field><operator><value>/],
    [{ q: '1name=x' }, 'q', /is not <field><operator><value>/],
    [{ q: 'name;drop table hosts=1' }, 'q', /is not <field><operator><value>/],
    [{ q: 'na-me=x' }, 'q', /is not <field><operator><value>/],
    [{ q: 'cluster..name=x' }, 'q', /is not <field><operator><value>/],
    [
      { q: 'colour=red' },
      'q',
      /unknown field 'colour' in 'colour=red' \(fields of hosts: uuid, name, cpuTotal/,
    ],
  ];
  for (const [raw, field, pattern] of bad) {
    test(`rejects ${JSON.stringify(raw)}`, () => rejects(raw, field, pattern));
  }

  test('too many conditions', () => {
    rejects({ q: Array.from({ length: MAX_CONDITIONS + 1 }, () => 'name=a') }, 'q', /at most 50 conditions/);
  });
});

describe('every problem at once', () => {
  test('collects problems from every parameter and every condition', () => {
    const ps = problems({
      q: ['colour=red', 'cpuTotal=x', 'name=ok', 'rack.name=y', 'state~=x', 'tag=a', 'uuid?=1,2'],
      sort: '-colour',
      limit: '5000',
      offset: '-1',
      count: 'maybe',
      fields: 'nope',
      page: '2',
    });
    assert.deepEqual(
      ps.map((p) => p.field),
      ['page', 'q', 'q', 'q', 'q', 'q', 'q', 'limit', 'offset', 'count', 'sort', 'fields'],
    );
    assert.match(ps.map((p) => p.problem).join('\n'), /'1' is not a uuid.*\n.*'2' is not a uuid/);
  });

  test('the error message names each problem', () => {
    try {
      parse({ limit: 'x', q: 'colour=red' });
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof CloudError);
      assert.match(err.message, /q: unknown field 'colour'.*; limit: must be an integer from 0 to 1000/);
      assert.equal(err.status, 400);
    }
  });
});

describe('visibility', () => {
  test('a non-admin may not query an admin kind at all', () => {
    assert.throws(
      () => parse({ q: 'colour=red' }, secrets),
      (err) => err instanceof CloudError && err.reason === 'Forbidden' && err.status === 403,
    );
    assert.equal(parse({}, secrets, admin).kind, 'secrets');
  });
});
