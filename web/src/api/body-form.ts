/**
 * The state of a form that sends one request body: its values, the problems the contract's
 * schema finds as the user types (shown once a field was touched, or all of them after a
 * refused submit), and the API's own refusal — its code and message, and each field it names
 * (`details.fields` of a 400, `details.field` of a service's refusal) shown next to that field.
 */
import { useMemo, useState } from 'react';
import { ApiError } from './client';
import { checkBody, type FieldProblem, type Schema } from './validate';

export type Values = Record<string, unknown>;

/** The fields a refusal names, each with its problem. */
export function fieldsOf(err: ApiError): Map<string, string> {
  const out = new Map<string, string>();
  const list = (err.details.fields as FieldProblem[] | undefined) ?? [];
  for (const f of list) out.set(f.field.replace(/^body\./, ''), f.problem);
  if (typeof err.details.field === 'string') out.set(err.details.field, err.message);
  return out;
}

export function useBodyForm(schema: Schema | undefined, rules?: Schema, initial: Values = {}) {
  const [values, setValues] = useState<Values>(initial);
  const [touched, setTouched] = useState<Set<string>>(() => new Set());
  const [showAll, setShowAll] = useState(false);
  const [apiError, setApiError] = useState<ApiError | null>(null);
  const [apiFields, setApiFields] = useState<Map<string, string>>(() => new Map());
  const problems = useMemo(() => (schema ? checkBody(schema, rules, values) : []), [schema, rules, values]);

  const set = (field: string, v: unknown) => {
    setValues((prev) => {
      const next = { ...prev };
      if (v === undefined) delete next[field];
      else next[field] = v;
      return next;
    });
    setTouched((prev) => new Set(prev).add(field));
    // the API's word on this field was about the old value
    if (apiFields.has(field)) {
      const next = new Map(apiFields);
      next.delete(field);
      setApiFields(next);
    }
  };

  /** The problem to show under a field: the API's, else the schema's (once touched). */
  const errorFor = (field: string): string | undefined => {
    const api = apiFields.get(field);
    if (api) return api;
    if (!showAll && !touched.has(field)) return undefined;
    const p = problems.find((q) => q.field === field || q.field.startsWith(`${field}.`));
    return p
      ? p.field === field
        ? p.problem
        : `${p.field.slice(field.length + 1)}: ${p.problem}`
      : undefined;
  };

  /**
   * Sends the body when the schema finds nothing wrong (else every problem shows and nothing is
   * sent); a refusal is kept for the fields and the alert. Returns the answer, or undefined.
   */
  const submit = async <T>(send: (body: Values) => Promise<T>): Promise<T | undefined> => {
    setShowAll(true);
    if (problems.length > 0) return undefined;
    setApiError(null);
    try {
      return await send(values);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', 'Internal', String(err));
      setApiError(e);
      setApiFields(fieldsOf(e));
      return undefined;
    }
  };

  return {
    values,
    setValues,
    set,
    errorFor,
    problems,
    /** problems shown after a refused submit that no field on screen carries (rules between fields) */
    shownProblems: showAll ? problems : [],
    apiError,
    submit,
    /** shows every problem at once (the page checks several forms before it sends the first) */
    reveal: () => setShowAll(true),
  };
}

export type BodyForm = ReturnType<typeof useBodyForm>;
