/**
 * Holds the server to its API document (issue 16): every answer a scenario test receives through
 * the test client (node.ts `Api`) is recorded against the node it came from, and when that test
 * node stops, each is checked against /v1/openapi.json: the status must be documented for the
 * operation, and a JSON body must match the documented schema of that status. A mismatch fails
 * the test file's `after` (startTestNode's stop) with the list. Answers that are no operation
 * (404 ROUTE_NOT_FOUND, 405, hidden routes such as /metrics) are not checked.
 * NIMBUS_CHECK_DOCUMENT=0 turns the check off (to bisect a failure).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';

// ajv-formats is CommonJS: its function is the module itself (module.exports) or its `default`
const addFormats = ((formats as unknown as { default?: typeof formats }).default ?? formats) as unknown as (
  ajv: Ajv,
) => void;

/** a validator for the document's schemas: every error, formats checked, OpenAPI keywords allowed */
export function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

type Json = Record<string, any>;

export interface RecordedAnswer {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

interface Template {
  method: string;
  template: string;
  pattern: RegExp;
  literals: number;
  op: Json;
}

const recorded = new Map<string, RecordedAnswer[]>();
const LIMIT_PER_NODE = 20_000;

export const documentCheckOn = process.env.NIMBUS_CHECK_DOCUMENT !== '0';

/** the test client calls this for every answer (keyed by the node's base URL) */
export function recordAnswer(baseUrl: string, answer: RecordedAnswer): void {
  if (!documentCheckOn) return;
  const list = recorded.get(baseUrl) ?? [];
  recorded.set(baseUrl, list);
  if (list.length < LIMIT_PER_NODE) list.push(answer);
}

export function takeAnswers(baseUrl: string): RecordedAnswer[] {
  const list = recorded.get(baseUrl) ?? [];
  recorded.delete(baseUrl);
  return list;
}

export class DocumentCheck {
  private readonly templates: Template[] = [];
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly doc: Json) {
    this.ajv = newAjv();
    for (const [template, item] of Object.entries(doc.paths as Record<string, Json>)) {
      const segments = template.split('/');
      const pattern = new RegExp(
        `^${segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('/')}$`,
      );
      const literals = segments.filter((s) => !s.startsWith('{')).length;
      for (const [method, op] of Object.entries(item))
        this.templates.push({ method: method.toUpperCase(), template, pattern, literals, op: op as Json });
    }
  }

  /** the documented operation a concrete request belongs to (the most literal template wins) */
  operation(method: string, path: string): Template | undefined {
    const bare = path.split('?')[0] ?? path;
    let best: Template | undefined;
    for (const t of this.templates)
      if (t.method === method && t.pattern.test(bare) && (!best || t.literals > best.literals)) best = t;
    return best;
  }

  private resolve(node: Json | undefined): Json | undefined {
    let n = node;
    for (let i = 0; n?.$ref && i < 5; i++) {
      const parts = String(n.$ref).replace(/^#\//, '').split('/');
      n = parts.reduce<Json | undefined>((acc, k) => acc?.[k], this.doc);
    }
    return n;
  }

  private validator(t: Template, status: string, schema: Json): ValidateFunction {
    const key = `${t.method} ${t.template} ${status}`;
    const known = this.validators.get(key);
    if (known) return known;
    const v = this.ajv.compile({ ...schema, components: this.doc.components });
    this.validators.set(key, v);
    return v;
  }

  /** what is wrong with one answer, or undefined */
  problem(a: RecordedAnswer): string | undefined {
    const error = (a.body as { error?: { code?: string } } | undefined)?.error;
    if (a.status === 405 || error?.code === 'ROUTE_NOT_FOUND') return undefined;
    const t = this.operation(a.method, a.path);
    if (!t) return undefined;
    const where = `${a.method} ${t.template} → ${a.status}`;
    const responses = t.op.responses as Record<string, Json>;
    const documented = this.resolve(responses[String(a.status)] ?? responses.default);
    if (!documented)
      return `${where}: status not documented (documented: ${Object.keys(responses).join(', ')})`;
    const schema = documented.content?.['application/json']?.schema as Json | undefined;
    if (!schema || a.body === undefined || typeof a.body === 'string') return undefined;
    const v = this.validator(t, String(a.status), schema);
    if (v(a.body)) return undefined;
    const first = (v.errors ?? [])
      .slice(0, 3)
      .map((e) => `${e.instancePath || '/'} ${e.message}`)
      .join('; ');
    return `${where}: body does not match the documented schema (${first}) — ${JSON.stringify(a.body).slice(0, 300)}`;
  }

  problems(answers: RecordedAnswer[]): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const a of answers) {
      const p = this.problem(a);
      // one line per (operation, status, kind of problem): a loop of calls reports once
      const key = p?.split(' — ')[0];
      if (p && key && !seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
    return out;
  }
}
