/**
 * Input rules every route obeys without its author remembering them, so that no request reaches
 * SQL with a value the database would refuse (a 500, or a job failing with the database's text):
 *
 * - No string in a body, a query or a path parameter, and no object key in a body, contains NUL
 *   (U+0000): PostgreSQL stores it neither in text nor in jsonb. Checked after schema validation
 *   (and after the route's own authorisation), before the handler; every such field is named.
 * - Every integer and number of a request schema is bounded: the route's own `maximum` (int
 *   columns: 2^31−1, see contract/common.ts) or, when it gives none, ±(2^53−1), the largest
 *   integer JSON carries exactly and what a bigint column holds. Filled in when a route is
 *   registered, so the OpenAPI document shows the bound too.
 * - Non-finite numbers (`1e400` parses to Infinity) are refused by ajv itself (strictNumbers).
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { type FieldProblem, invalid } from '../kernel/errors.js';

export const MAX_JSON_INTEGER = Number.MAX_SAFE_INTEGER;

type SchemaNode = Record<string, unknown>;

const isNode = (v: unknown): v is SchemaNode => typeof v === 'object' && v !== null && !Array.isArray(v);

function typesOf(node: SchemaNode): string[] {
  const t = node.type;
  if (typeof t === 'string') return [t];
  return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
}

/** Gives every integer/number in a schema tree bounds it lacks (in place: schemas are built per route). */
export function boundNumbers(node: unknown, seen = new Set<unknown>()): void {
  if (!isNode(node) || seen.has(node)) return;
  seen.add(node);
  const types = typesOf(node);
  if (types.includes('integer') || types.includes('number')) {
    if (node.maximum === undefined && node.exclusiveMaximum === undefined) node.maximum = MAX_JSON_INTEGER;
    if (node.minimum === undefined && node.exclusiveMinimum === undefined) node.minimum = -MAX_JSON_INTEGER;
  }
  for (const key of ['properties', 'patternProperties', 'definitions', '$defs']) {
    const children = node[key];
    if (isNode(children)) for (const child of Object.values(children)) boundNumbers(child, seen);
  }
  for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains']) {
    const child = node[key];
    if (Array.isArray(child)) for (const c of child) boundNumbers(c, seen);
    else boundNumbers(child, seen);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) {
    const list = node[key];
    if (Array.isArray(list)) for (const c of list) boundNumbers(c, seen);
  }
}

const NUL = '\u0000';

/** A key as it may be printed: a NUL in it shows as \u0000. */
export const printable = (key: string) => key.replaceAll(NUL, '\\u0000');

/** Every place in a parsed value where a string or an object key holds NUL, as field paths. */
export function nulFields(value: unknown, path: string, out: FieldProblem[] = [], depth = 0): FieldProblem[] {
  if (depth > 64) return out; // bodies are at most 1 MiB; a deeper tree is refused by its schema anyway
  if (typeof value === 'string') {
    if (value.includes(NUL)) out.push({ field: path, problem: 'must not contain a NUL character (\\u0000)' });
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) nulFields(v, path ? `${path}.${i}` : String(i), out, depth + 1);
  } else if (isNode(value)) {
    for (const [k, v] of Object.entries(value)) {
      const child = path ? `${path}.${printable(k)}` : printable(k);
      if (k.includes(NUL))
        out.push({ field: child, problem: 'a field name must not contain a NUL character (\\u0000)' });
      nulFields(v, child, out, depth + 1);
    }
  }
  return out;
}

export function checkNoNul(request: FastifyRequest): void {
  const problems: FieldProblem[] = [];
  nulFields(request.params, '', problems);
  nulFields(request.query, '', problems);
  nulFields(request.body, '', problems);
  if (problems.length > 0) throw invalid(problems, 'INVALID_REQUEST');
}

/** Installs both rules on every route registered after this call. */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (!schema) return;
    for (const part of ['body', 'querystring', 'params']) boundNumbers(schema[part]);
  });
  app.addHook('preHandler', async (request) => checkNoNul(request));
}
