/**
 * The query language behind every `GET /v1/<kind>`: `q=` conditions (nested across relations,
 * tags), sort, paging, count and projection, parsed from the raw query string and run as SQL.
 *
 * Invariants:
 * - Parsing is pure and total: every bad parameter, field, operator and value is reported at once
 *   as one Invalid error (code INVALID_QUERY); nothing reaches the database until all are good.
 * - All filtering, sorting and paging happen in PostgreSQL in one statement (plus one count);
 *   names come only from KindSchemas and values are bound parameters, so nothing is injectable.
 * - Visibility is enforced in SQL: a non-admin sees only its own rows of `owned` kinds, at the top
 *   and inside every nested condition; `admin` kinds are refused at the top and are invisible
 *   (reported as unknown) behind relations. getVisibleRow applies the same rule to single reads.
 * - Sorting always ends with the key column, so pages are stable under equal sort values.
 */
export {
  type Condition,
  DEFAULT_LIMIT,
  type Hop,
  type ListQuery,
  MAX_CONDITIONS,
  MAX_DEPTH,
  MAX_LIMIT,
  MAX_LIST_VALUES,
  type Operator,
  parseListQuery,
  type QueryScope,
  type RawQuery,
  type Scalar,
  type SortKey,
  type TagMatch,
} from './parse.js';
export { getVisibleRow, type ListResult, runCount, runListQuery } from './run.js';
export {
  createRegistry,
  type FieldType,
  type KindRegistry,
  type KindSchema,
  type Relation,
  type Visibility,
} from './schema.js';
