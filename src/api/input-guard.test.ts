import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundNumbers, MAX_JSON_INTEGER, nulFields } from './input-guard.js';

test('every string and key holding NUL is named, nested ones by their path', () => {
  const problems = nulFields(
    { name: 'a\u0000', ok: 'fine', nics: [{ ip: '1.2.3.4' }, { ip: '\u0000' }], 'k\u0000': 1 },
    '',
  );
  assert.deepEqual(
    problems.map((p) => p.field),
    ['name', 'nics.1.ip', 'k\\u0000'],
  );
  assert.deepEqual(nulFields(['x', 'y\u0000'], 'q'), [
    { field: 'q.1', problem: 'must not contain a NUL character (\\u0000)' },
  ]);
  assert.deepEqual(nulFields({ n: 1, b: true, z: null }, ''), []);
});

test('integers and numbers without bounds get ±(2^53−1); given bounds stay', () => {
  const schema = {
    type: 'object',
    properties: {
      a: { type: 'integer' },
      b: { type: 'integer', minimum: 1, maximum: 4094 },
      c: { anyOf: [{ type: 'number' }, { type: 'null' }] },
      d: { type: 'array', items: { type: 'integer', exclusiveMaximum: 10 } },
      e: { type: 'string' },
    },
  };
  boundNumbers(schema);
  const p = schema.properties as Record<string, any>;
  assert.equal(p.a.maximum, MAX_JSON_INTEGER);
  assert.equal(p.a.minimum, -MAX_JSON_INTEGER);
  assert.equal(p.b.maximum, 4094);
  assert.equal(p.b.minimum, 1);
  assert.equal(p.c.anyOf[0].maximum, MAX_JSON_INTEGER);
  assert.equal(p.d.items.maximum, undefined, 'exclusiveMaximum is a bound');
  assert.equal(p.d.items.minimum, -MAX_JSON_INTEGER);
  assert.equal(p.e.maximum, undefined);
});
