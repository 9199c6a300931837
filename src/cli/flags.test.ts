import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { Type } from 'typebox';
import { Bytes, Nullable } from '../contract/common.js';
import { KINDS } from '../contract/kinds.js';
import { UsageError } from './errors.js';
import {
  addFieldOptions,
  attributeOf,
  collectBody,
  type FieldSpec,
  fieldSpecs,
  kebab,
  parseBytes,
  parseFieldValue,
  parseInteger,
  parseSeconds,
} from './flags.js';

const CLUSTER_UUID = '0190a0b0-0000-7000-8000-00000000000c';

/** Every shape the contract can use, independent of what the real kinds hold today. */
const schema = Type.Object(
  {
    name: Type.String({ description: 'the name' }),
    clusterUuid: Type.String({ format: 'uuid', description: 'cluster to use' }),
    ownerUuid: Type.Optional(Type.String({ format: 'uuid' })),
    cpu: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'CPUs' })),
    memory: Bytes('memory size'),
    ratio: Type.Optional(Type.Number()),
    mode: Type.Union([Type.Literal('fast'), Type.Literal('safe')], { description: 'mode' }),
    level: Type.Optional(Type.Enum(['low', 'high'])),
    enabled: Type.Optional(Type.Boolean({ description: 'turn it on' })),
    note: Type.Optional(Nullable(Type.String())),
    dns: Type.Optional(Type.Array(Type.String())),
    extra: Type.Optional(Type.Object({ a: Type.Integer() })),
    wait: Type.Optional(Type.String()),
    managementIP: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const specs = fieldSpecs(schema, KINDS, ['wait', 'output']);
const spec = (field: string): FieldSpec => {
  const s = specs.find((x) => x.field === field);
  assert.ok(s, `no spec for ${field}`);
  return s;
};

function parse(args: string[]): Record<string, unknown> {
  const cmd = new Command('t').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  addFieldOptions(cmd, specs, true);
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

const resolveCalls: string[] = [];
const resolve = async (_kind: unknown, v: string) => {
  resolveCalls.push(v);
  return CLUSTER_UUID;
};

describe('flag names', () => {
  test('camelCase fields become kebab-case flags and back', () => {
    assert.equal(kebab('clusterUuid'), 'cluster-uuid');
    assert.equal(kebab('l3NetworkUuid'), 'l3-network-uuid');
    assert.equal(kebab('managementIP'), 'management-ip');
    assert.equal(kebab('name'), 'name');
    assert.equal(attributeOf('cluster-uuid'), 'clusterUuid');
    assert.equal(attributeOf('l3-network-uuid'), 'l3NetworkUuid');
  });

  test('specs carry type, required, description, choices and range from the schema', () => {
    assert.deepEqual(
      { kind: spec('name').kind, required: spec('name').required, description: spec('name').description },
      { kind: 'string', required: true, description: 'the name' },
    );
    assert.equal(spec('cpu').kind, 'integer');
    assert.equal(spec('cpu').required, false);
    assert.deepEqual([spec('cpu').minimum, spec('cpu').maximum], [1, 64]);
    assert.equal(spec('memory').kind, 'bytes');
    assert.equal(spec('memory').required, true);
    assert.equal(spec('ratio').kind, 'number');
    assert.deepEqual(spec('mode').choices, ['fast', 'safe']);
    assert.deepEqual(spec('level').choices, ['low', 'high']);
    assert.equal(spec('enabled').kind, 'boolean');
    assert.equal(spec('note').nullable, true);
    assert.equal(spec('dns').kind, 'list');
    assert.equal(spec('extra').kind, 'json');
    assert.equal(
      spec('ownerUuid').description,
      'owner uuid',
      'missing descriptions are derived from the name',
    );
  });

  test('a <kind>Uuid field also gets --<kind>; other Uuid fields do not', () => {
    assert.equal(spec('clusterUuid').ref?.kind.kind, 'clusters');
    assert.equal(spec('clusterUuid').ref?.flag, 'cluster');
    assert.equal(spec('ownerUuid').ref, undefined);
  });

  test('a field named like a flag the command owns is renamed rather than clashing', () => {
    assert.equal(spec('wait').flag, 'field-wait');
    assert.equal(spec('managementIP').flag, 'management-ip');
  });

  test('every kind of the contract yields options commander accepts', () => {
    for (const kind of KINDS) {
      for (const body of [
        kind.create,
        kind.update,
        ...Object.values(kind.actions ?? {}).map((a) => a.body),
      ]) {
        if (!body) continue;
        const cmd = new Command('x');
        assert.doesNotThrow(
          () => addFieldOptions(cmd, fieldSpecs(body, KINDS, ['wait', 'output']), true),
          kind.kind,
        );
      }
    }
  });
});

describe('lists of references', () => {
  const listSchema = Type.Object(
    {
      zoneUuids: Type.Optional(
        Type.Array(Type.String({ format: 'uuid' }), {
          description: 'zones, in order',
          'x-cli-ref-alias': 'z',
        }),
      ),
      tagUuids: Type.Optional(Type.Array(Type.Integer())),
    },
    { additionalProperties: false },
  );
  const listSpecs = fieldSpecs(listSchema, KINDS, ['wait', 'output']);
  const parseList = (args: string[]) => {
    const cmd = new Command('t').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    addFieldOptions(cmd, listSpecs, true);
    cmd.parse(args, { from: 'user' });
    return cmd.opts();
  };

  test('a <kind>Uuids list of strings gets a repeatable --<kind> and its alias; other lists do not', () => {
    const zones = listSpecs.find((s) => s.field === 'zoneUuids');
    assert.deepEqual(
      [zones?.ref?.kind.kind, zones?.ref?.flag, zones?.ref?.alias, zones?.ref?.list],
      ['zones', 'zone', 'z', true],
    );
    assert.equal(listSpecs.find((s) => s.field === 'tagUuids')?.ref, undefined);
  });

  test('each name is resolved, in the order given; the uuid list flag still works alone', async () => {
    const seen: string[] = [];
    const byName = async (_k: unknown, v: string) => {
      seen.push(v);
      return `uuid-of-${v}`;
    };
    const body = await collectBody(
      listSpecs,
      parseList(['--z', 'east', '--zone', 'west']),
      byName,
      true,
    ).catch((e: unknown) => e);
    // the flag and its alias are one option: giving both is refused like for single references
    assert.ok(body instanceof UsageError);
    assert.deepEqual(await collectBody(listSpecs, parseList(['--z', 'east', '--z', 'we,st']), byName, true), {
      zoneUuids: ['uuid-of-east', 'uuid-of-we,st'],
    });
    assert.deepEqual(seen, ['east', 'we,st']);
    assert.deepEqual(await collectBody(listSpecs, parseList(['--zone-uuids', 'a,b']), byName, true), {
      zoneUuids: ['a', 'b'],
    });
    await assert.rejects(
      collectBody(listSpecs, parseList(['--zone-uuids', 'a', '--zone', 'b']), byName, true),
      UsageError,
    );
  });

  test('vm create takes --l3 repeatable (the contract marks it)', () => {
    const vms = KINDS.find((k) => k.kind === 'vms');
    const l3 = fieldSpecs(vms?.create, KINDS, ['wait', 'output']).find((s) => s.field === 'l3NetworkUuids');
    assert.deepEqual([l3?.ref?.flag, l3?.ref?.alias, l3?.ref?.list], ['l3-network', 'l3', true]);
  });
});

describe('value parsing', () => {
  test('durations take s/m/h/d/w suffixes, or plain seconds; a duration field’s flag drops its unit', () => {
    assert.equal(parseSeconds('90s'), 90);
    assert.equal(parseSeconds('30m'), 1800);
    assert.equal(parseSeconds('12h'), 43200);
    assert.equal(parseSeconds('7d'), 604800);
    assert.equal(parseSeconds('2w'), 1209600);
    assert.equal(parseSeconds('3600'), 3600);
    assert.equal(parseSeconds('1.5h'), 5400);
    for (const bad of ['', 'soon', '7y', '-1d', '1.5', 'd', '1 2h']) {
      assert.throws(() => parseSeconds(bad), InvalidArgumentError, bad);
    }
    const pools = KINDS.find((k) => k.kind === 'pools');
    const lease = fieldSpecs(pools?.actions?.allocate?.body, KINDS, ['wait', 'output']).find(
      (s) => s.field === 'leaseSeconds',
    );
    assert.equal(lease?.flag, 'lease');
    assert.equal(lease && parseFieldValue(lease, '7d'), 604800);
  });

  test('sizes take K/M/G/T suffixes in powers of 1024, or plain bytes', () => {
    assert.equal(parseBytes('512M'), 512 * 1024 ** 2);
    assert.equal(parseBytes('64G'), 64 * 1024 ** 3);
    assert.equal(parseBytes('1T'), 1024 ** 4);
    assert.equal(parseBytes('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(parseBytes('4096'), 4096);
    assert.equal(parseBytes('2k'), 2048);
    assert.equal(parseBytes('8GiB'), 8 * 1024 ** 3);
    assert.equal(parseBytes('8gb'), 8 * 1024 ** 3);
    assert.equal(parseBytes('100B'), 100);
    for (const bad of ['', 'lots', '12Q', '-1G', '1.5', '0.1K', 'G', '1e3', '1 2G', '99999999P']) {
      assert.throws(() => parseBytes(bad), InvalidArgumentError, bad);
    }
  });

  test('integers are whole, safe and within the schema range', () => {
    assert.equal(parseInteger('42'), 42);
    assert.equal(parseInteger('-3'), -3);
    for (const bad of ['1.5', 'abc', '', '9007199254740993', '0x10']) {
      assert.throws(() => parseInteger(bad), InvalidArgumentError, bad);
    }
    assert.equal(parseFieldValue(spec('cpu'), '64'), 64);
    assert.throws(() => parseFieldValue(spec('cpu'), '0'), /at least 1/);
    assert.throws(() => parseFieldValue(spec('cpu'), '65'), /at most 64/);
  });

  test('choices, numbers, nulls, lists and JSON', () => {
    assert.equal(parseFieldValue(spec('mode'), 'safe'), 'safe');
    assert.throws(() => parseFieldValue(spec('mode'), 'SAFE'), /one of: fast, safe/);
    assert.equal(parseFieldValue(spec('ratio'), '1.25'), 1.25);
    assert.throws(() => parseFieldValue(spec('ratio'), 'x'), /number/);
    assert.equal(parseFieldValue(spec('note'), 'null'), null);
    assert.equal(parseFieldValue(spec('name'), 'null'), 'null', 'only nullable fields read null');
    assert.deepEqual(parseFieldValue(spec('dns'), '1.1.1.1, 8.8.8.8'), ['1.1.1.1', '8.8.8.8']);
    assert.deepEqual(parseFieldValue(spec('extra'), '{"a":1}'), { a: 1 });
    assert.throws(() => parseFieldValue(spec('extra'), '{a'), /JSON/);
  });
});

describe('options → body', () => {
  test('parsed flags become a typed body', async () => {
    const opts = parse([
      '--name',
      'n1',
      '--cluster-uuid',
      CLUSTER_UUID,
      '--memory',
      '1.5G',
      '--cpu',
      '8',
      '--mode',
      'fast',
      '--no-enabled',
      '--dns',
      'a,b',
      '--dns',
      'c',
      '--field-wait',
      'w',
    ]);
    assert.deepEqual(await collectBody(specs, opts, resolve, true), {
      name: 'n1',
      clusterUuid: CLUSTER_UUID,
      memory: 1610612736,
      cpu: 8,
      mode: 'fast',
      enabled: false,
      dns: ['a', 'b', 'c'],
      wait: 'w',
    });
    assert.equal((await collectBody(specs, parse(['--enabled']), resolve, false)).enabled, true);
  });

  test('--<kind> <name> is resolved into the uuid field', async () => {
    resolveCalls.length = 0;
    const opts = parse(['--name', 'n', '--cluster', 'c1', '--memory', '1G', '--mode', 'safe']);
    const body = await collectBody(specs, opts, resolve, true);
    assert.equal(body.clusterUuid, CLUSTER_UUID);
    assert.equal('cluster' in body, false);
    assert.deepEqual(resolveCalls, ['c1']);
  });

  test('every missing required field is reported at once, before any lookup', async () => {
    resolveCalls.length = 0;
    await assert.rejects(
      collectBody(specs, parse(['--cluster', 'c1']), resolve, true),
      (err: unknown) =>
        err instanceof UsageError && err.message === 'missing required options: --name, --memory, --mode',
    );
    assert.deepEqual(resolveCalls, []);
    assert.deepEqual(await collectBody(specs, parse([]), resolve, false), {}, 'update: nothing is required');
  });

  test('both --cluster and --cluster-uuid is a usage error', async () => {
    const opts = parse(['--cluster', 'c1', '--cluster-uuid', CLUSTER_UUID]);
    await assert.rejects(collectBody(specs, opts, resolve, false), UsageError);
  });

  test('unknown flags and bad values are refused by the parser', () => {
    const code = (args: string[]) => {
      try {
        parse(args);
        return 'ok';
      } catch (err) {
        return err instanceof CommanderError ? err.code : String(err);
      }
    };
    assert.equal(code(['--bogus', '1']), 'commander.unknownOption');
    assert.equal(code(['--memory', '12Q']), 'commander.invalidArgument');
    assert.equal(code(['--cpu', 'four']), 'commander.invalidArgument');
    assert.equal(code(['--mode', 'turbo']), 'commander.invalidArgument');
    assert.equal(code(['--name']), 'commander.optionMissingArgument');
    assert.equal(code(['--memory', '2T']), 'ok');
  });
});
