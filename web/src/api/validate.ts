/**
 * Checks a request body against the contract's own JSON Schema (the create and action bodies
 * the build hands over in the catalog), as the user types: the same rules the API's validator
 * applies, with the field named the way the API names it (`staticIps.0.ip`) and the problem said
 * the way it says it (src/api/errors.ts), so what the form shows before sending is what the API
 * would answer.
 *
 * An interpreter of the keywords the contract uses, not a compiler: the console's
 * Content-Security-Policy has no 'unsafe-eval', so Ajv's generated code cannot run here.
 */

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  minProperties?: number;
  description?: string;
  'x-unit'?: string;
}

export interface FieldProblem {
  field: string;
  problem: string;
}

const FORMATS: Record<string, RegExp> = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  ipv4: /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i,
};

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'null':
      return v === null;
    default:
      return true;
  }
}

const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));

/** Every problem of `value` against `schema`, each naming its field (`body` for the whole). */
export function check(schema: Schema, value: unknown, path = ''): FieldProblem[] {
  const out: FieldProblem[] = [];
  const at = path || 'body';
  if (schema.type && !typeOk(schema.type, value)) return [{ field: at, problem: `must be ${schema.type}` }];
  if (schema.const !== undefined && value !== schema.const)
    out.push({ field: at, problem: 'must be equal to constant' });
  if (schema.enum && !schema.enum.includes(value))
    out.push({ field: at, problem: `must be one of ${schema.enum.join(', ')}` });
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength)
      out.push({ field: at, problem: `must NOT have fewer than ${schema.minLength} characters` });
    if (schema.maxLength !== undefined && value.length > schema.maxLength)
      out.push({ field: at, problem: `must NOT have more than ${schema.maxLength} characters` });
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value))
      out.push({ field: at, problem: `must match pattern "${schema.pattern}"` });
    const fmt = schema.format ? FORMATS[schema.format] : undefined;
    if (fmt && !fmt.test(value)) out.push({ field: at, problem: `must be a valid ${schema.format}` });
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      out.push({ field: at, problem: `must be >= ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum)
      out.push({ field: at, problem: `must be <= ${schema.maximum}` });
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      out.push({ field: at, problem: `must NOT have fewer than ${schema.minItems} items` });
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      out.push({ field: at, problem: `must NOT have more than ${schema.maxItems} items` });
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
      out.push({ field: at, problem: 'must NOT have duplicate items' });
    const items = schema.items;
    if (items) for (const [i, v] of value.entries()) out.push(...check(items, v, join(path, i)));
  }
  if (typeOk('object', value) && (schema.properties || schema.required)) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? [])
      if (obj[r] === undefined) out.push({ field: join(path, r), problem: 'is required' });
    for (const [key, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const prop = schema.properties?.[key];
      if (prop) out.push(...check(prop, v, join(path, key)));
      else if (schema.additionalProperties === false)
        out.push({ field: join(path, key), problem: 'unknown field' });
    }
    if (schema.minProperties !== undefined && Object.keys(obj).length < schema.minProperties)
      out.push({ field: at, problem: `must NOT have fewer than ${schema.minProperties} properties` });
  }
  // combinators: the whole value passes or fails (their branches are the contract's rules between fields)
  const passes = (s: Schema) => check(s, value, path).length === 0;
  if (schema.anyOf && !schema.anyOf.some(passes))
    out.push({ field: at, problem: schema.description ?? 'must match a schema in anyOf' });
  if (schema.oneOf && schema.oneOf.filter(passes).length !== 1)
    out.push({ field: at, problem: schema.description ?? 'must match exactly one schema in oneOf' });
  if (schema.not && passes(schema.not)) out.push({ field: at, problem: 'must NOT be valid' });
  return out;
}

/**
 * A body against its schema and the kind's rules between fields (`createRules`, said in JSON
 * Schema with a description the service also words): problems per field, the rules' under `body`.
 */
export function checkBody(schema: Schema, rules: Schema | undefined, body: Record<string, unknown>) {
  const problems = check(schema, body);
  if (rules && check(rules, body).length > 0)
    problems.push({ field: 'body', problem: rules.description ?? 'the fields do not fit together' });
  return problems;
}
