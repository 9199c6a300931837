/**
 * Table-driven: every operation of the OpenAPI document of a running node, every path parameter,
 * query parameter (and, on lists, `q=` on every field of the kind) and body field of string,
 * integer or number type, gets a bad value in turn: a NUL byte, integers beyond any column
 * (2^63, 1e300) and non-finite numbers (1e400 parses to Infinity). Each must be a 4xx naming the
 * field, never a 5xx, and no probe may start a job (so none can fail with the database's text).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { startTestNode, type TestNode } from '../support/node.js';

type Schema = Record<string, any>;

interface Probe {
  method: string;
  path: string;
  /** raw JSON text of the body, if any */
  body?: string;
  /** the field the answer must name */
  field: string;
  what: string;
  /** a probe of `q` on an integer column at the int32 boundary: any answer below 500 will do */
  anyBelow500?: boolean;
}

const NUL_TEXT = 'a\u0000b';
const BAD_NUMBERS = ['9223372036854775808', '1e300', '-1e300', '1e400', '-1e400'];
const PLACEHOLDER = '"__BAD_VALUE__"';

/** The scalar types a schema (or a nullable union) admits. */
function scalarTypes(s: Schema): string[] {
  const out = new Set<string>();
  const visit = (n: Schema | undefined) => {
    if (!n) return;
    if (typeof n.type === 'string') out.add(n.type);
    if (Array.isArray(n.type)) for (const t of n.type) out.add(t);
    for (const k of ['anyOf', 'oneOf', 'allOf']) for (const c of n[k] ?? []) visit(c);
  };
  visit(s);
  return [...out];
}

/** Leaves of a body schema, as paths of property names and array indexes. */
function leaves(
  s: Schema,
  path: Array<string | number> = [],
  depth = 0,
): Array<{ path: Array<string | number>; types: string[] }> {
  if (depth > 6) return [];
  const out: Array<{ path: Array<string | number>; types: string[] }> = [];
  const types = scalarTypes(s);
  if (types.some((t) => t === 'string' || t === 'integer' || t === 'number') && path.length > 0)
    out.push({ path, types });
  const branches = [s, ...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])];
  for (const b of branches) {
    for (const [k, child] of Object.entries((b.properties ?? {}) as Record<string, Schema>))
      out.push(...leaves(child, [...path, k], depth + 1));
    if (b.items && typeof b.items === 'object') out.push(...leaves(b.items, [...path, 0], depth + 1));
    if (b.additionalProperties && typeof b.additionalProperties === 'object')
      out.push(...leaves(b.additionalProperties, [...path, 'someKey'], depth + 1));
  }
  return out;
}

/** `{a: [{b: <bad>}]}` for path ['a', 0, 'b'], as JSON text with the bad value's raw literal. */
function bodyWith(path: Array<string | number>, raw: string): string {
  const build = (i: number): unknown => {
    if (i === path.length) return '__BAD_VALUE__';
    const k = path[i]!;
    return typeof k === 'number' ? [build(i + 1)] : { [k]: build(i + 1) };
  };
  return JSON.stringify(build(0)).replace(PLACEHOLDER, raw);
}

function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? 'x');
}

function probesFor(doc: Schema): Probe[] {
  const probes: Probe[] = [];
  for (const [template, item] of Object.entries(doc.paths as Record<string, Schema>)) {
    for (const [method, op] of Object.entries(item)) {
      const M = method.toUpperCase();
      const params = (op.parameters ?? []) as Schema[];
      const pathParams = params.filter((p) => p.in === 'path');
      const good: Record<string, string> = {};
      for (const p of pathParams) good[p.name] = p.schema?.format === 'uuid' ? newId() : 'k';
      // path parameters
      for (const p of pathParams) {
        probes.push({
          method: M,
          path: fillPath(template, { ...good, [p.name]: 'a%00b' }),
          field: p.name,
          what: `path ${p.name} with NUL`,
        });
      }
      const base = fillPath(template, good);
      // query parameters the document lists
      for (const p of params.filter((x) => x.in === 'query')) {
        const types = scalarTypes(p.schema ?? {});
        const values = [encodeURIComponent(NUL_TEXT)];
        if (types.includes('integer') || types.includes('number')) values.push(...BAD_NUMBERS);
        // a digits-only string parameter (an event id) must not overflow its column either
        if (p.schema?.pattern === '^[0-9]+$' || String(p.schema?.pattern ?? '').startsWith('^[0-9]'))
          values.push('99999999999999999999999');
        for (const v of values)
          probes.push({
            method: M,
            path: `${base}?${p.name}=${v}`,
            field: p.name,
            what: `query ${p.name}=${v}`,
          });
      }
      // lists: q on every field of the kind, and the paging parameters
      const isList = M === 'GET' && /^\/v1\/[a-z-]+$/.test(template) && op.responses?.['200'];
      const itemProps = isList
        ? (op.responses['200'].content?.['application/json']?.schema?.properties?.items?.items?.properties as
            | Record<string, Schema>
            | undefined)
        : undefined;
      if (itemProps) {
        for (const [field, s] of Object.entries(itemProps)) {
          const types = scalarTypes(s);
          const conds = [`${field}=${NUL_TEXT}`, `${field}?=a,${NUL_TEXT}`];
          if (types.includes('integer'))
            for (const n of BAD_NUMBERS) conds.push(`${field}>=${n}`, `${field}?=1,${n}`);
          if (types.includes('number')) conds.push(`${field}>=1e400`, `${field}?=1,-1e400`);
          for (const c of conds)
            probes.push({
              method: M,
              path: `${base}?q=${encodeURIComponent(c)}`,
              field: 'q',
              what: `q=${c}`,
            });
          // within what a column of the type holds or compares with: any answer but a 5xx
          const near = types.includes('integer')
            ? [`${field}>=2147483648`, `${field}=-9007199254740991`]
            : types.includes('number')
              ? [`${field}>=1e300`, `${field}?=1,-1e300`]
              : [];
          for (const c of near)
            probes.push({
              method: M,
              path: `${base}?q=${encodeURIComponent(c)}`,
              field: 'q',
              what: `q=${c}`,
              anyBelow500: true,
            });
        }
        for (const p of ['limit', 'offset'])
          for (const v of [...BAD_NUMBERS, encodeURIComponent(NUL_TEXT)])
            probes.push({ method: M, path: `${base}?${p}=${v}`, field: p, what: `${p}=${v}` });
        for (const p of ['sort', 'fields'])
          probes.push({ method: M, path: `${base}?${p}=${encodeURIComponent(NUL_TEXT)}`, field: p, what: p });
      }
      // body fields
      const bodySchema = op.requestBody?.content?.['application/json']?.schema as Schema | undefined;
      if (bodySchema) {
        for (const leaf of leaves(bodySchema)) {
          const field = leaf.path.join('.');
          const values = [JSON.stringify(NUL_TEXT)];
          if (leaf.types.includes('integer') || leaf.types.includes('number')) values.push(...BAD_NUMBERS);
          for (const v of values)
            probes.push({
              method: M,
              path: base,
              body: bodyWith(leaf.path, v),
              field,
              what: `body ${field}=${v}`,
            });
        }
        probes.push({
          method: M,
          path: base,
          body: JSON.stringify({ 'x\u0000y': 1 }),
          field: 'x\\u0000y',
          what: 'a body key with NUL',
        });
      }
    }
  }
  return probes;
}

const names = (body: any, field: string): boolean =>
  Array.isArray(body?.error?.details?.fields) &&
  body.error.details.fields.some(
    (f: { field: string }) => f.field === field || f.field.startsWith(`${field}.`),
  );

describe('bad input on every route of the OpenAPI document', () => {
  let t: TestNode;
  before(async () => {
    t = await startTestNode();
  });
  after(() => t.stop());

  test('NUL bytes, out-of-range integers and non-finite numbers get a 4xx naming the field', async () => {
    const doc = (await t.anon.get('/v1/openapi.json')).body;
    const probes = probesFor(doc);
    const operations = Object.values(doc.paths as Record<string, Schema>).reduce(
      (n, item) => n + Object.keys(item).length,
      0,
    );
    assert.ok(operations > 200, `only ${operations} operations in the document`);
    assert.ok(probes.length > 2000, `only ${probes.length} probes`);
    const jobsBefore = await t.db.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();

    const failures: string[] = [];
    const queue = [...probes];
    const worker = async () => {
      for (let p = queue.shift(); p; p = queue.shift()) {
        const headers: Record<string, string> = { authorization: `Bearer ${t.admin.token}` };
        if (p.body !== undefined) headers['content-type'] = 'application/json';
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), 10_000);
        let status = 0;
        let body: any;
        try {
          const res = await fetch(`${t.url}${p.path}`, {
            method: p.method,
            headers,
            signal: ctl.signal,
            ...(p.body !== undefined ? { body: p.body } : {}),
          });
          status = res.status;
          const text = await res.text();
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
        } catch (err) {
          failures.push(`${p.method} ${p.path} (${p.what}): no answer (${(err as Error).name})`);
          continue;
        } finally {
          clearTimeout(timer);
        }
        const line = `${p.method} ${p.path.slice(0, 120)} (${p.what}) → ${status} ${JSON.stringify(body).slice(0, 300)}`;
        if (p.anyBelow500) {
          if (status >= 500) failures.push(line);
        } else if (status < 400 || status >= 500 || !names(body, p.field)) failures.push(line);
        if (
          JSON.stringify(body ?? '').match(
            /out of range|syntax for type|invalid byte sequence|column "|relation "/,
          )
        )
          failures.push(`database text leaked: ${line}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    assert.deepEqual(failures, [], `${failures.length} of ${probes.length} probes failed`);

    const jobsAfter = await t.db.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    assert.equal(Number(jobsAfter?.n), Number(jobsBefore?.n), 'a probe started a job');
    const internal = await t.db.db
      .selectFrom('jobs')
      .select(['kind', 'error'])
      .where('state', '=', 'Failed')
      .execute();
    assert.deepEqual(
      internal.filter((j) => (j.error as { code?: string } | null)?.code === 'INTERNAL_ERROR'),
      [],
    );
  });
});
