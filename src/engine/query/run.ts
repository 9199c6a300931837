/**
 * ListQuery → SQL. One statement for the page (and one for the total when asked), built with
 * Kysely so every name goes through the CamelCasePlugin and every value is a bound parameter.
 * Nested conditions and tags compile to correlated EXISTS, which never duplicates outer rows.
 */
import {
  type Expression,
  type ExpressionBuilder,
  expressionBuilder,
  type Kysely,
  type RawBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import type { Executor } from '../../db/transaction.js';
import { forbidden, invalid } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import {
  type Condition,
  canSee,
  type Hop,
  keyOf,
  type ListQuery,
  type QueryScope,
  type TagMatch,
} from './parse.js';
import type { KindRegistry, KindSchema } from './schema.js';

export interface ListResult {
  items: Record<string, unknown>[];
  limit: number;
  offset: number;
  /** present when the query asked for count=true */
  total?: number;
}

// Tables and columns come from schemas at run time, so the builder is used untyped.
type Row = Record<string, unknown>;
type LooseDb = Record<string, Row>;
type Eb = ExpressionBuilder<LooseDb, string>;

/** Aliases t0, t1, … numbered per statement so self-relations never collide. */
class Aliases {
  private next = 0;
  take(): string {
    return `t${this.next++}`;
  }
}

const eb: Eb = expressionBuilder<LooseDb, string>();

function col(alias: string, column: string): RawBuilder<unknown> {
  return sql.ref(`${alias}.${column}`);
}

function and(parts: Expression<SqlBool>[]): Expression<SqlBool> {
  return parts.length === 0 ? sql<boolean>`true` : eb.and(parts);
}

/** Row visibility of one table occurrence: the account filter for owned kinds (plus public rows). */
function scopeFilter(schema: KindSchema, alias: string, scope: QueryScope): Expression<SqlBool>[] {
  if (scope.isAdmin || schema.visibility === 'shared') return [];
  if (schema.visibility === 'admin') throw forbidden(`only the admin account may list ${schema.kind}`);
  const own = eb(col(alias, 'accountUuid'), '=', scope.accountUuid);
  if (!schema.publicColumn) return [own];
  return [eb.or([own, eb(col(alias, schema.publicColumn), '=', true)])];
}

function fieldPredicate(c: Condition & { type: 'field' }, alias: string): Expression<SqlBool> {
  const ref = col(alias, c.field);
  // LIKE on a uuid column needs text; PostgreSQL has no uuid ~~ text operator
  const text = c.fieldType === 'uuid' ? eb.cast(ref, 'text') : ref;
  // 'int' fields are int or bigint columns: a value beyond int (cpu>=2147483648) typed as the
  // column would be an out-of-range error; as bigint it compares (int4 vs int8 keeps the index)
  const values = c.fieldType === 'int' ? c.values.map((x) => sql`cast(${x} as bigint)`) : c.values;
  const v = values[0];
  // Negations include NULL rows: `a=x` and `a!=x` together cover every row.
  switch (c.op) {
    case '=null':
      return eb(ref, 'is', null);
    case '!=null':
      return eb(ref, 'is not', null);
    case '=':
      return eb(ref, '=', v);
    case '!=':
      return eb(ref, 'is distinct from', v);
    case '>':
    case '>=':
    case '<':
    case '<=':
      return eb(ref, c.op, v);
    case '~=':
      return eb(text, 'like', v);
    case '!~=':
      return eb.or([eb(text, 'not like', v), eb(ref, 'is', null)]);
    case '?=':
      return eb(ref, 'in', values);
    case '!?=':
      return eb.or([eb(ref, 'not in', values), eb(ref, 'is', null)]);
  }
}

function tagMatches(alias: string, op: Condition['op'], tags: TagMatch[]): Expression<SqlBool> {
  const like = op === '~=' || op === '!~=';
  const one = (t: TagMatch): Expression<SqlBool> => {
    if (t.value === undefined) return eb(col(alias, 'key'), like ? 'like' : '=', t.key);
    return eb.and([eb(col(alias, 'key'), '=', t.key), eb(col(alias, 'value'), like ? 'like' : '=', t.value)]);
  };
  return tags.length === 1 ? one(tags[0]!) : eb.or(tags.map(one));
}

function tagPredicate(
  c: Condition & { type: 'tag' },
  owner: KindSchema,
  alias: string,
  aliases: Aliases,
): Expression<SqlBool> {
  const t = aliases.take();
  const where: Expression<SqlBool>[] = [eb(col(t, 'resourceUuid'), '=', col(alias, keyOf(owner)))];
  if (c.op !== '=null' && c.op !== '!=null') where.push(tagMatches(t, c.op, c.tags));
  const exists = eb.exists(
    eb.selectFrom(sql.table('tags').as(t)).select(sql.lit(1).as('one')).where(and(where)),
  );
  const negated = c.op === '!=' || c.op === '!~=' || c.op === '!?=' || c.op === '=null';
  return negated ? eb.not(exists) : exists;
}

/** The condition at the end of its path, wrapped in one correlated EXISTS per hop. */
function conditionPredicate(
  c: Condition,
  schema: KindSchema,
  alias: string,
  aliases: Aliases,
  scope: QueryScope,
  hops: Hop[] = c.path,
): Expression<SqlBool> {
  const [hop, ...rest] = hops;
  if (hop === undefined) {
    return c.type === 'tag' ? tagPredicate(c, schema, alias, aliases) : fieldPredicate(c, alias);
  }
  if (!canSee(hop.schema, scope)) {
    // parse never lets this through; stay closed if a ListQuery was built by hand
    throw invalid(
      [{ field: 'q', problem: `unknown relation '${hop.name}' in '${c.text}'` }],
      'INVALID_QUERY',
    );
  }
  const inner = aliases.take();
  const where = [
    eb(col(inner, hop.relation.remote), '=', col(alias, hop.relation.local)),
    ...scopeFilter(hop.schema, inner, scope),
    conditionPredicate(c, hop.schema, inner, aliases, scope, rest),
  ];
  return eb.exists(
    eb.selectFrom(sql.table(hop.schema.table).as(inner)).select(sql.lit(1).as('one')).where(and(where)),
  );
}

function whereClause(schema: KindSchema, query: ListQuery, scope: QueryScope): Expression<SqlBool> {
  const aliases = new Aliases();
  const top = aliases.take();
  return and([
    ...scopeFilter(schema, top, scope),
    ...query.conditions.map((c) => conditionPredicate(c, schema, top, aliases, scope)),
  ]);
}

function loose(db: Executor): Kysely<LooseDb> {
  return db as unknown as Kysely<LooseDb>;
}

function columnsOf(schema: KindSchema, fields?: string[]): string[] {
  if (fields) return fields;
  const key = keyOf(schema);
  const all = [...Object.keys(schema.fields), ...(schema.selectOnly ?? [])];
  return all.includes(key) ? all : [key, ...all];
}

/** The page of rows a ListQuery selects (and the total when `query.count`). */
export async function runListQuery(
  db: Executor,
  _registry: KindRegistry,
  schema: KindSchema,
  query: ListQuery,
  scope: QueryScope,
): Promise<ListResult> {
  if (query.kind !== schema.kind) throw new Error(`query for ${query.kind} run against ${schema.kind}`);
  const where = whereClause(schema, query, scope);
  const page = async (): Promise<Row[]> => {
    if (query.limit === 0) return [];
    let q = loose(db)
      .selectFrom(sql.table(schema.table).as('t0'))
      .select(columnsOf(schema, query.fields).map((f) => col('t0', f).as(f)))
      .where(where);
    for (const s of query.sort) q = q.orderBy(col('t0', s.field), s.desc ? 'desc' : 'asc');
    return q.limit(query.limit).offset(query.offset).execute();
  };
  const [items, total] = await Promise.all([
    page(),
    query.count ? countWhere(db, schema, where) : Promise.resolve(undefined),
  ]);
  const result: ListResult = { items, limit: query.limit, offset: query.offset };
  if (total !== undefined) result.total = total;
  return result;
}

async function countWhere(db: Executor, schema: KindSchema, where: Expression<SqlBool>): Promise<number> {
  const row = await loose(db)
    .selectFrom(sql.table(schema.table).as('t0'))
    .select(sql<string | number>`count(*)`.as('n'))
    .where(where)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many rows match the query's conditions, ignoring its paging. */
export function runCount(
  db: Executor,
  schema: KindSchema,
  query: ListQuery,
  scope: QueryScope,
): Promise<number> {
  return countWhere(db, schema, whereClause(schema, query, scope));
}

/**
 * One row by key with the same visibility as lists: undefined for another account's row, for an
 * admin-only kind seen by a non-admin, and for a key that cannot exist (so the API answers 404).
 */
export async function getVisibleRow(
  db: Executor,
  schema: KindSchema,
  key: string,
  scope: QueryScope,
): Promise<Record<string, unknown> | undefined> {
  if (!canSee(schema, scope)) return undefined;
  const keyColumn = keyOf(schema);
  const keyType = schema.fields[keyColumn] ?? 'uuid';
  // a malformed uuid would be a PostgreSQL cast error (500), not a missing row
  if (keyType === 'uuid' && !isUuid(key)) return undefined;
  return loose(db)
    .selectFrom(sql.table(schema.table).as('t0'))
    .select(columnsOf(schema).map((f) => col('t0', f).as(f)))
    .where(and([eb(col('t0', keyColumn), '=', key), ...scopeFilter(schema, 't0', scope)]))
    .executeTakeFirst();
}
