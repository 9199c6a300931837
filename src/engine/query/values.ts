/**
 * Operators and values of one `q=` condition: splitting off the operator, converting the value
 * text by FieldType, and the tag forms. Pure; problems go to a `report` callback so the parser
 * can collect every problem of a request before failing.
 */
import { isUuid } from '../../kernel/ids.js';
import type { FieldType } from './schema.js';

export type Scalar = string | number | boolean | Date;

export type Converted = { ok: true; value: Scalar } | { ok: false; problem: string };

const INT_RE = /^[+-]?\d+$/;
// Number() alone would accept '', ' ', '0x10' and 'Infinity'
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
// Date.parse alone accepts many non-ISO shapes ('1', 'March 7'); require ISO 8601 first.
const TIMESTAMP_RE =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

export function typeName(type: FieldType): string {
  return typeof type === 'string' ? type : `one of ${type.enum.join(', ')}`;
}

export function convertValue(type: FieldType, text: string): Converted {
  const bad = (what: string): Converted => ({ ok: false, problem: `'${text}' is not ${what}` });
  if (typeof type !== 'string') {
    return type.enum.includes(text) ? { ok: true, value: text } : bad(typeName(type));
  }
  switch (type) {
    case 'string':
      return { ok: true, value: text };
    case 'uuid':
      // stored uuids compare case-insensitively in PostgreSQL; lower-casing keeps IN lists tidy
      return isUuid(text) ? { ok: true, value: text.toLowerCase() } : bad('a uuid');
    case 'int': {
      const n = Number(text);
      return INT_RE.test(text) && Number.isSafeInteger(n) ? { ok: true, value: n } : bad('an integer');
    }
    case 'number': {
      const n = Number(text);
      return NUMBER_RE.test(text) && Number.isFinite(n) ? { ok: true, value: n } : bad('a number');
    }
    case 'boolean':
      if (text === 'true') return { ok: true, value: true };
      if (text === 'false') return { ok: true, value: false };
      return bad('a boolean (true or false)');
    case 'timestamp': {
      const m = TIMESTAMP_RE.exec(text);
      if (!m) return bad('an ISO 8601 timestamp');
      // without an offset, the server's own time zone would decide: pin such values to UTC
      const iso = m[1] === undefined && text.length > 10 ? `${text}Z` : text;
      const ms = Date.parse(iso.replace(' ', 'T'));
      return Number.isNaN(ms) ? bad('an ISO 8601 timestamp') : { ok: true, value: new Date(ms) };
    }
  }
}

/** LIKE makes sense on text only; booleans and numbers would need casts nobody means. */
export function isLikeable(type: FieldType): boolean {
  return typeof type !== 'string' || type === 'string' || type === 'uuid';
}

export type Operator =
  | '='
  | '!='
  | '>'
  | '>='
  | '<'
  | '<='
  | '~='
  | '!~='
  | '?='
  | '!?='
  | '=null'
  | '!=null';

/** Longest first, so `!=` never shadows `!=null` or `!?=`. */
export const OPERATORS: readonly Operator[] = [
  '!?=',
  '!~=',
  '!=null',
  '=null',
  '?=',
  '~=',
  '>=',
  '<=',
  '!=',
  '=',
  '>',
  '<',
];

export interface TagMatch {
  key: string;
  /** undefined: any value (or, for LIKE, a pattern on the key itself) */
  value?: string;
}

// Bounds what one `?=` list can make the database do.
export const MAX_LIST_VALUES = 500;

export function splitOperator(rest: string): { op: Operator; value: string } | undefined {
  for (const op of OPERATORS) {
    if (!rest.startsWith(op)) continue;
    // `=null` is an operator only as the whole rest: `a=nullx` compares with 'nullx'
    if ((op === '=null' || op === '!=null') && rest !== op) continue;
    return { op, value: rest.slice(op.length) };
  }
  return undefined;
}

export function parseFieldValues(
  type: FieldType,
  op: Operator,
  value: string,
  text: string,
  report: (problem: string) => void,
): Scalar[] | undefined {
  switch (op) {
    case '=null':
    case '!=null':
      return [];
    case '~=':
    case '!~=':
      if (!isLikeable(type)) {
        report(`'${op}' needs a text field, not ${typeName(type)}, in '${text}'`);
        return undefined;
      }
      return [value];
    case '>':
    case '>=':
    case '<':
    case '<=':
      if (type === 'boolean') {
        report(`'${op}' does not apply to boolean fields, in '${text}'`);
        return undefined;
      }
      return convertAll(type, [value], text, report);
    case '=':
    case '!=':
      return convertAll(type, [value], text, report);
    case '?=':
    case '!?=': {
      const list = value.split(',');
      if (list.length > MAX_LIST_VALUES) {
        report(`'${op}' takes at most ${MAX_LIST_VALUES} values, in '${text}'`);
        return undefined;
      }
      return convertAll(type, list, text, report);
    }
  }
}

function convertAll(
  type: FieldType,
  texts: string[],
  text: string,
  report: (problem: string) => void,
): Scalar[] | undefined {
  const out: Scalar[] = [];
  let ok = true;
  for (const t of texts) {
    const c = convertValue(type, t);
    if (c.ok) out.push(c.value);
    else {
      report(`${c.problem}, in '${text}'`);
      ok = false;
    }
  }
  return ok ? out : undefined;
}

/** `key` or `key=value`; the value may itself contain '='. */
function tagMatch(text: string): TagMatch {
  const eq = text.indexOf('=');
  return eq < 0 ? { key: text } : { key: text.slice(0, eq), value: text.slice(eq + 1) };
}

export function parseTagValues(
  op: Operator,
  value: string,
  text: string,
  report: (problem: string) => void,
): TagMatch[] | undefined {
  switch (op) {
    case '=null':
    case '!=null':
      return [];
    case '=':
    case '!=':
    case '~=':
    case '!~=':
    case '?=':
    case '!?=': {
      const parts = op === '?=' || op === '!?=' ? value.split(',') : [value];
      if (parts.length > MAX_LIST_VALUES) {
        report(`'${op}' takes at most ${MAX_LIST_VALUES} tags, in '${text}'`);
        return undefined;
      }
      const tags = parts.map(tagMatch);
      if (tags.some((t) => t.key === '')) {
        report(`a tag needs a key ('key' or 'key=value'), in '${text}'`);
        return undefined;
      }
      return tags;
    }
    default:
      report(`tags take =, !=, ~=, !~=, ?=, !?=, =null or !=null, not '${op}', in '${text}'`);
      return undefined;
  }
}
