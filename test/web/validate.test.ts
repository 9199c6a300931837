/**
 * The console's checker (web/src/api/validate.ts, which runs in the browser without eval) says
 * what the API's validator says: for every create and action body of the contract, a valid body
 * and variants of it (each field missing, of the wrong type, out of its bounds, an unknown
 * field) get the same verdict from the console's checker and from Ajv set up as the server sets
 * it up (Fastify's compiler with formats, allErrors, strictNumbers), naming the same fields.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { transform } from 'esbuild';
import { KINDS } from '../../src/contract/kinds.js';

type Schema = Record<string, any>;
type Check = (schema: Schema, value: unknown) => { field: string; problem: string }[];

async function loadChecker(): Promise<Check> {
  const ts = readFileSync(new URL('../../../web/src/api/validate.ts', import.meta.url), 'utf8');
  const { code } = await transform(ts, { loader: 'ts', format: 'esm' });
  const mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  return mod.check as Check;
}

function serverAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    coerceTypes: false,
    strictNumbers: true,
    strict: false,
    keywords: ['x-unit', 'x-cli-ref-alias', 'x-cli-file'],
  });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

const STRINGS = [
  'abc',
  'http://example.com/a.qcow2',
  'eth0',
  'dev',
  'example.org',
  '10.0.0.1',
  '10.0.0.0/24',
];

/** A value the schema takes (or undefined when none of the simple candidates fits). */
function sample(s: Schema): unknown {
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.anyOf) return sample(s.anyOf[0]);
  switch (s.type) {
    case 'boolean':
      return true;
    case 'integer':
    case 'number':
      return s.minimum ?? 1;
    case 'array':
      return s.minItems ? Array.from({ length: s.minItems }, (_, i) => uniqueSample(s.items, i)) : [];
    case 'object':
      return Object.fromEntries((s.required ?? []).map((r: string) => [r, sample(s.properties[r])]));
    case 'string': {
      if (s.format === 'uuid') return '01a251b0-f44d-7164-9224-d93bf488951c';
      if (s.format === 'ipv4') return '10.0.0.1';
      if (s.format === 'date-time') return '2026-12-07T10:00:00Z';
      const re = s.pattern ? new RegExp(s.pattern, 'u') : undefined;
      return STRINGS.find(
        (v) => (!re || re.test(v)) && v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? 1e9),
      );
    }
    default:
      return undefined;
  }
}

function uniqueSample(s: Schema, i: number): unknown {
  const v = sample(s);
  return typeof v === 'string' && s.format === 'uuid' ? v.replace(/c$/, String(i)) : v;
}

/** A valid body and variants of it, each with what it changes. */
function variants(body: Schema): [string, Record<string, unknown>][] {
  const base = sample(body) as Record<string, unknown>;
  const out: [string, Record<string, unknown>][] = [
    ['the required fields', base],
    ['nothing', {}],
    ['an unknown field', { ...base, notAField: 1 }],
  ];
  for (const [field, s] of Object.entries<Schema>(body.properties ?? {})) {
    const { [field]: _gone, ...without } = base;
    if (field in base) out.push([`${field} missing`, without]);
    const good = sample(s);
    if (good !== undefined) out.push([`${field} set`, { ...base, [field]: good }]);
    out.push([`${field} of the wrong type`, { ...base, [field]: s.type === 'string' ? 7 : 'seven' }]);
    if (s.minimum !== undefined)
      out.push([`${field} below its minimum`, { ...base, [field]: s.minimum - 1 }]);
    if (s.maximum !== undefined)
      out.push([`${field} above its maximum`, { ...base, [field]: s.maximum + 1 }]);
    if (s.maxLength !== undefined)
      out.push([`${field} too long`, { ...base, [field]: 'x'.repeat(s.maxLength + 1) }]);
    if (s.type === 'string') out.push([`${field} empty`, { ...base, [field]: '' }]);
    if (s.type === 'string') out.push([`${field} with spaces around`, { ...base, [field]: ' abc ' }]);
    if (s.type === 'integer') out.push([`${field} a fraction`, { ...base, [field]: 1.5 }]);
    if (s.type === 'array' && s.maxItems !== undefined)
      out.push([
        `${field} with too many items`,
        { ...base, [field]: Array.from({ length: s.maxItems + 1 }, (_, i) => uniqueSample(s.items, i)) },
      ]);
  }
  return out;
}

/** The fields Ajv names, as src/api/errors.ts words them (combinator errors left out, as there). */
function ajvFields(errors: { instancePath: string; keyword: string; params: Record<string, unknown> }[]) {
  return new Set(
    errors
      .filter((e) => !['anyOf', 'oneOf', 'if', 'not'].includes(e.keyword))
      .map((e) => {
        const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
        const extra = (e.params.missingProperty ?? e.params.additionalProperty) as string | undefined;
        return [path, extra].filter(Boolean).join('.') || 'body';
      }),
  );
}

describe('the console checks a body as the API does', () => {
  test('every create and action body of the contract: same verdict, same fields', async () => {
    const check = await loadChecker();
    const ajv = serverAjv();
    const bodies: [string, Schema][] = [];
    for (const k of KINDS) {
      if (k.create) bodies.push([`POST /v1/${k.kind}`, k.create]);
      for (const [name, a] of Object.entries(k.actions ?? {})) bodies.push([`${k.kind} ${name}`, a.body]);
    }
    let compared = 0;
    for (const [what, schema] of bodies) {
      const validate = ajv.compile(JSON.parse(JSON.stringify(schema)));
      for (const [variant, body] of variants(schema)) {
        const api = validate(body);
        const mine = check(schema, body);
        assert.equal(
          mine.length === 0,
          api,
          `${what}, ${variant}: ${JSON.stringify(body)} → ${JSON.stringify(mine)}`,
        );
        if (!api) {
          const named = new Set(mine.map((p) => p.field));
          assert.deepEqual(named, ajvFields(validate.errors as never), `${what}, ${variant}`);
        }
        compared++;
      }
    }
    console.log(`# ${compared} bodies of ${bodies.length} schemas: the same verdict from both`);
    assert.ok(compared > 500, `only ${compared} bodies compared`);
  });
});
