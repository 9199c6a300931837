/**
 * Query-string → ListQuery. Pure: resolves every field path against the kind registry,
 * converts every value by its FieldType and collects every problem before throwing once.
 */
import { type FieldProblem, forbidden, invalid } from '../../kernel/errors.js';
import type { FieldType, KindRegistry, KindSchema, Relation } from './schema.js';
import {
  OPERATORS,
  type Operator,
  parseFieldValues,
  parseTagValues,
  type Scalar,
  splitOperator,
  type TagMatch,
} from './values.js';

export { MAX_LIST_VALUES, type Operator, type Scalar, type TagMatch } from './values.js';

export interface QueryScope {
  accountUuid: string;
  isAdmin: boolean;
}

export type RawQuery = Record<string, string | string[] | undefined>;

/** One relation followed from the previous kind (the list's own kind for the first hop). */
export interface Hop {
  name: string;
  relation: Relation;
  schema: KindSchema;
}

export type Condition =
  | {
      type: 'field';
      text: string;
      path: Hop[];
      field: string;
      fieldType: FieldType;
      op: Operator;
      values: Scalar[];
    }
  | { type: 'tag'; text: string; path: Hop[]; op: Operator; tags: TagMatch[] };

export interface SortKey {
  field: string;
  desc: boolean;
}

export interface ListQuery {
  kind: string;
  conditions: Condition[];
  /** ends with the key column, so equal sort values still page in a stable order */
  sort: SortKey[];
  limit: number;
  offset: number;
  count: boolean;
  /** projection; undefined: every field of the kind */
  fields?: string[];
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
export const MAX_DEPTH = 4;
// Bounds what one request can make the database do.
export const MAX_CONDITIONS = 50;

const KNOWN_PARAMS = ['q', 'sort', 'limit', 'offset', 'count', 'fields'];
const PATH_RE = /^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*/;
const NUMERAL_RE = /^\d+$/;

export function keyOf(schema: KindSchema): string {
  return schema.key ?? 'uuid';
}

/** A non-admin must not learn that admin-only kinds exist behind a relation. */
export function canSee(schema: KindSchema, scope: QueryScope): boolean {
  return scope.isAdmin || schema.visibility !== 'admin';
}

/** The kind's own fields, plus the key when a schema leaves it out of `fields`. */
function ownFields(schema: KindSchema): Record<string, FieldType> {
  const key = keyOf(schema);
  return key in schema.fields ? schema.fields : { [key]: 'uuid', ...schema.fields };
}

export function parseListQuery(
  raw: RawQuery,
  schema: KindSchema,
  registry: KindRegistry,
  scope: QueryScope,
): ListQuery {
  if (!canSee(schema, scope)) throw forbidden(`only the admin account may list ${schema.kind}`);
  const problems: FieldProblem[] = [];
  const single = (name: string): string | undefined => {
    const v = raw[name];
    if (!Array.isArray(v)) return v;
    problems.push({ field: name, problem: 'may be given only once' });
    return undefined;
  };

  for (const [name, v] of Object.entries(raw)) {
    if (v !== undefined && !KNOWN_PARAMS.includes(name)) {
      problems.push({ field: name, problem: `unknown parameter (known: ${KNOWN_PARAMS.join(', ')})` });
    }
  }

  const qs = raw.q === undefined ? [] : Array.isArray(raw.q) ? raw.q : [raw.q];
  if (qs.length > MAX_CONDITIONS) {
    problems.push({ field: 'q', problem: `at most ${MAX_CONDITIONS} conditions are allowed` });
  }
  const conditions: Condition[] = [];
  for (const text of qs.slice(0, MAX_CONDITIONS)) {
    const c = parseCondition(text, schema, registry, scope, (problem) =>
      problems.push({ field: 'q', problem }),
    );
    if (c) conditions.push(c);
  }

  const limit = parseCount(single('limit'), DEFAULT_LIMIT, MAX_LIMIT, 'limit', problems);
  const offset = parseCount(single('offset'), 0, Number.MAX_SAFE_INTEGER, 'offset', problems);

  let count = false;
  const countText = single('count');
  if (countText === 'true') count = true;
  else if (countText !== undefined && countText !== 'false') {
    problems.push({ field: 'count', problem: 'must be true or false' });
  }

  const sortText = single('sort');
  const sort = parseSort(sortText ?? schema.defaultSort, schema, (problem) => {
    if (sortText === undefined) throw new Error(`defaultSort of ${schema.kind} is invalid: ${problem}`);
    problems.push({ field: 'sort', problem });
  });
  const fieldsText = single('fields');
  const fields = fieldsText === undefined ? undefined : parseFields(fieldsText, schema, problems);

  if (problems.length > 0) throw invalid(problems, 'INVALID_QUERY');
  const query: ListQuery = { kind: schema.kind, conditions, sort, limit, offset, count };
  if (fields) query.fields = fields;
  return query;
}

function parseCount(
  text: string | undefined,
  fallback: number,
  max: number,
  field: string,
  problems: FieldProblem[],
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (NUMERAL_RE.test(text) && n <= max) return n;
  problems.push({
    field,
    problem: max === MAX_LIMIT ? `must be an integer from 0 to ${max}` : 'must be a non-negative integer',
  });
  return fallback;
}

function fieldList(schema: KindSchema): string {
  return Object.keys(ownFields(schema)).join(', ');
}

function parseSort(text: string | undefined, schema: KindSchema, report: (p: string) => void): SortKey[] {
  const key = keyOf(schema);
  const keys: SortKey[] = [];
  if (text !== undefined) {
    for (const part of text.split(',')) {
      const desc = part.startsWith('-');
      const field = desc ? part.slice(1) : part;
      if (!Object.hasOwn(ownFields(schema), field)) {
        report(
          `cannot sort by '${part}': sort by fields of ${schema.kind} (${fieldList(schema)}), '-' first for descending`,
        );
      } else if (!keys.some((k) => k.field === field)) {
        keys.push({ field, desc });
      }
    }
  }
  if (!keys.some((k) => k.field === key)) keys.push({ field: key, desc: false });
  return keys;
}

function parseFields(text: string, schema: KindSchema, problems: FieldProblem[]): string[] {
  const out: string[] = [];
  for (const f of text.split(',')) {
    if (!Object.hasOwn(ownFields(schema), f)) {
      problems.push({
        field: 'fields',
        problem: `unknown field '${f}' (fields of ${schema.kind}: ${fieldList(schema)})`,
      });
    } else if (!out.includes(f)) {
      out.push(f);
    }
  }
  return out;
}

function parseCondition(
  text: string,
  schema: KindSchema,
  registry: KindRegistry,
  scope: QueryScope,
  report: (problem: string) => void,
): Condition | undefined {
  const pathText = PATH_RE.exec(text)?.[0];
  const split = pathText === undefined ? undefined : splitOperator(text.slice(pathText.length));
  if (pathText === undefined || split === undefined) {
    report(`'${text}' is not <field><operator><value> (operators: ${OPERATORS.join(' ')})`);
    return undefined;
  }
  const { op, value } = split;
  const segments = pathText.split('.');
  const last = segments.pop()!;
  if (segments.length > MAX_DEPTH) {
    report(`'${text}' follows ${segments.length} relations; at most ${MAX_DEPTH} are allowed`);
    return undefined;
  }

  const path: Hop[] = [];
  let kind = schema;
  for (const name of segments) {
    const relation = kind.relations?.[name];
    const target = relation && registry.get(relation.kind);
    if (relation && !target)
      throw new Error(`relation ${kind.kind}.${name} names unknown kind ${relation.kind}`);
    if (!relation || !target || !canSee(target, scope)) {
      report(
        `unknown relation '${name}' of ${kind.kind} in '${text}' (${relationHint(kind, registry, scope)})`,
      );
      return undefined;
    }
    path.push({ name, relation, schema: target });
    kind = target;
  }

  const fields = ownFields(kind);
  const fieldType = Object.hasOwn(fields, last) ? fields[last] : undefined;
  if (fieldType === undefined && last === 'tag' && kind.taggable) {
    const tags = parseTagValues(op, value, text, report);
    return tags && { type: 'tag', text, path, op, tags };
  }
  if (fieldType === undefined) {
    const tag = kind.taggable ? ', tag' : '';
    report(`unknown field '${last}' in '${text}' (fields of ${kind.kind}: ${fieldList(kind)}${tag})`);
    return undefined;
  }
  const values = parseFieldValues(fieldType, op, value, text, report);
  return values && { type: 'field', text, path, field: last, fieldType, op, values };
}

function relationHint(kind: KindSchema, registry: KindRegistry, scope: QueryScope): string {
  const visible = Object.entries(kind.relations ?? {})
    .filter(([, r]) => {
      const target = registry.get(r.kind);
      return target !== undefined && canSee(target, scope);
    })
    .map(([name]) => name);
  return visible.length === 0
    ? `${kind.kind} has no relations`
    : `relations of ${kind.kind}: ${visible.join(', ')}`;
}
