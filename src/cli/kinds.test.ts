import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { KINDS } from '../contract/kinds.js';
import type { Ctx } from './context.js';
import { parseTag } from './kinds.js';
import { buildProgram } from './program.js';
import { listQuery } from './reads.js';

const ctx: Ctx = {
  env: {},
  out: () => {},
  err: () => {},
  interactive: false,
  color: false,
  colorOut: false,
  client: () => {
    throw new Error('no server in this test');
  },
};

const sub = (cmd: Command, name: string) => cmd.commands.find((c) => c.name() === name);

describe('list query', () => {
  test('conditions repeat, in order; other parameters only when given', () => {
    assert.deepEqual(listQuery({}), []);
    assert.deepEqual(
      listQuery({
        q: ['state=Enabled', 'name~=web%', 'tag=env=prod'],
        sort: '-name',
        limit: 0,
        offset: 20,
        count: true,
        fields: 'uuid,name',
      }),
      [
        ['q', 'state=Enabled'],
        ['q', 'name~=web%'],
        ['q', 'tag=env=prod'],
        ['sort', '-name'],
        ['limit', '0'],
        ['offset', '20'],
        ['count', 'true'],
        ['fields', 'uuid,name'],
      ],
    );
    const qs = new URLSearchParams(listQuery({ q: ['cpuTotal>=8', 'uuid?=a,b'] })).toString();
    assert.deepEqual(new URLSearchParams(qs).getAll('q'), ['cpuTotal>=8', 'uuid?=a,b'], 'survives encoding');
  });

  test('tags are key or key=value (the value may hold =)', () => {
    assert.deepEqual(parseTag('env'), { key: 'env' });
    assert.deepEqual(parseTag('env=prod'), { key: 'env', value: 'prod' });
    assert.deepEqual(parseTag('expr=a=b'), { key: 'expr', value: 'a=b' });
    assert.deepEqual(parseTag('empty='), { key: 'empty', value: '' });
    assert.throws(() => parseTag('=x'));
  });
});

describe('command tree generated from the contract', () => {
  const program = buildProgram(ctx);

  test('every kind has list and get, and exactly what its contract allows', () => {
    for (const kind of KINDS) {
      const cmd = sub(program, kind.singular);
      assert.ok(cmd, kind.singular);
      assert.equal(cmd.description(), kind.summary);
      const names = cmd.commands.map((c) => c.name());
      assert.ok(names.includes('list') && names.includes('get'), kind.singular);
      assert.equal(names.includes('create'), kind.create !== undefined, `${kind.singular} create`);
      assert.equal(names.includes('update'), kind.update !== undefined, `${kind.singular} update`);
      assert.equal(names.includes('delete'), kind.deletable, `${kind.singular} delete`);
      assert.equal(names.includes('tag') && names.includes('untag'), kind.taggable, `${kind.singular} tag`);
      for (const action of Object.keys(kind.actions ?? {})) {
        assert.ok(names.includes(action) || names.includes(`${action}-action`), `${kind.singular} ${action}`);
      }
    }
    assert.ok(sub(sub(program, 'job') as Command, 'wait'));
  });

  test('create flags come from the create schema, required ones marked', () => {
    for (const kind of KINDS.filter((k) => k.create)) {
      const create = sub(sub(program, kind.singular) as Command, 'create') as Command;
      const schema = kind.create as unknown as { properties: Record<string, unknown>; required?: string[] };
      for (const field of Object.keys(schema.properties)) {
        // a duration drops its unit from the flag (`--lease 7d` for leaseSeconds; flags.ts)
        const named =
          (schema.properties[field] as { 'x-unit'?: string })['x-unit'] === 'seconds'
            ? field.replace(/Seconds$/, '')
            : field;
        const flag = `--${named.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;
        const option = create.options.find((o) => o.long === flag || o.long === `--field-${flag.slice(2)}`);
        assert.ok(option, `${kind.singular} create ${flag}`);
        assert.equal(
          option.description.includes('[required]'),
          schema.required?.includes(field) ?? false,
          flag,
        );
      }
      assert.ok(create.options.some((o) => o.long === '--wait'));
    }
  });
});
