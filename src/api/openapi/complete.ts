/**
 * Completes the document @fastify/swagger builds from the routes' schemas, in one pass over every
 * operation, so that no route can forget it: the error responses it can answer (one error
 * schema), a stable `operationId`, its domain as tag, `security: []` on the public routes, the
 * list parameters of every collection and `wait` on every route that takes it. The rules for
 * which statuses an operation documents are here and nowhere else; test/scenario/openapi*.test.ts
 * check them against what the server really answers.
 */
import { REASONS } from '../../kernel/errors.js';
import { PUBLIC_PATHS } from '../auth.js';
import { DOMAINS, domainOf } from './domains.js';
import { LIST_PARAMETERS, WAIT_PARAMETER } from './parameters.js';

export const ERROR_SCHEMA = {
  type: 'object',
  description: 'every 4xx and 5xx answer',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'reason', 'message', 'details'],
      properties: {
        code: {
          type: 'string',
          pattern: '^[A-Z][A-Z0-9_]*$',
          description: 'stable and searchable, e.g. VM_NOT_FOUND, INVALID_REQUEST, OVERLOADED',
        },
        reason: { type: 'string', enum: [...REASONS], description: 'the class; alone decides the status' },
        message: { type: 'string', description: 'for a person: names the field or resource and the reason' },
        details: {
          type: 'object',
          additionalProperties: true,
          description:
            'machine-readable: `fields` ([{field, problem}]) for a 400, `kind`/`uuid` for a 404/409, `retryAfterSeconds` for a 429/503',
        },
        retryable: {
          type: 'boolean',
          description: 'present and true when the same request may succeed later',
        },
      },
    },
  },
} as const;

/** the error statuses and what each means here (components.responses) */
const ERROR_RESPONSES: Record<string, string> = {
  '400':
    'Invalid: a field, parameter or referenced resource is wrong (`details.fields` names each); a resource named in the body that does not exist is a 400 with code `<KIND>_NOT_FOUND`',
  '401': 'Unauthenticated: no token, an expired or revoked one, or wrong credentials',
  '403': 'Forbidden: the caller may not do this (an admin-only kind or action)',
  '404': 'NotFound: the resource named in the path does not exist or the caller may not see it',
  '409': 'Conflict: the resource is in a state or use that does not allow this, or the name is taken',
  '413': 'the body is larger than 1 MiB',
  '414': 'a path parameter is longer than 100 characters (URI_TOO_LONG)',
  '415': 'the body is not application/json',
  '429': 'Throttled: too many attempts; Retry-After says when to try again',
  '500': 'Internal: a fault of the server; the request id (x-request-id) finds it in the log',
  '503': 'Unavailable: the node is overloaded (OVERLOADED, Retry-After) or cannot reach its database; retry',
};

const METHODS = ['get', 'put', 'post', 'patch', 'delete'] as const;

type Json = Record<string, unknown>;
interface Operation extends Json {
  tags?: string[];
  operationId?: string;
  parameters?: Json[];
  requestBody?: Json;
  responses?: Record<string, Json>;
  security?: unknown[];
}

const pascal = (s: string) =>
  s
    .split(/[-_/\s]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
const camel = (s: string) => {
  const p = pascal(s);
  return p[0]!.toLowerCase() + p.slice(1);
};

/** `listVms`, `getVm`, `createVm`, `startVm`, `setVmTag`…; other routes name theirs in their schema */
export function operationIdFor(
  method: string,
  path: string,
  singularOf: (kind: string) => string | undefined,
): string {
  const parts = path.replace(/^\/v1\//, '').split('/');
  const kind = parts[0] ?? '';
  const one = pascal(singularOf(kind) ?? kind);
  const shape = parts
    .slice(1)
    .map((p) => (p.startsWith('{') ? '{}' : p))
    .join('/');
  if (singularOf(kind) !== undefined) {
    if (shape === '' && method === 'get') return `list${pascal(kind)}`;
    if (shape === '' && method === 'post') return `create${one}`;
    if (shape === '{}') return `${{ get: 'get', patch: 'update', delete: 'delete' }[method] ?? method}${one}`;
    if (shape === '{}/actions/' + parts[3] && method === 'post') return `${camel(parts[3] ?? '')}${one}`;
    if (shape === '{}/tags' && method === 'post') return `set${one}Tag`;
    if (shape === '{}/tags/{}' && method === 'delete') return `remove${one}Tag`;
  }
  return camel(`${method}-${parts.filter((p) => !p.startsWith('{')).join('-')}`);
}

function errorStatuses(method: string, path: string, op: Operation, isKind: boolean): string[] {
  const s = new Set<string>(['500', '503']);
  const isPublic = PUBLIC_PATHS.has(path);
  if (!isPublic) s.add('401').add('403');
  if (op.requestBody) s.add('400').add('413').add('415');
  if ((op.parameters ?? []).length > 0) s.add('400');
  if (path.includes('{')) s.add('404').add('414');
  if (isKind && method !== 'get') s.add('409');
  if (path === '/v1/auth/login') s.add('401').add('429');
  // public for the bearer token, but checks a credential of its own (a one-time console token),
  // then the VM it names and its host (console-routes.ts)
  if (path === '/v1/console') s.add('401').add('404').add('409');
  // read from the VM's host (resources/compute/vm/serial-log.ts): a VM with none is a 409
  if (path === '/v1/vms/{uuid}/serial-log') s.add('409');
  return [...s].sort();
}

const SUCCESS_TEXT: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '202': 'Accepted: the job runs; Location: /v1/jobs/{uuid}',
  '204': 'No Content',
};

const isNullMarker = (n: Json) =>
  n.type === 'null' ||
  (n.nullable === true && Array.isArray(n.enum) && n.enum.length === 1 && n.enum[0] === null);

/**
 * TypeBox's `Nullable(Type.Enum([...]))` comes out of the swagger plugin as an anyOf with a
 * `{type: object, nullable, enum: [null]}` branch, which generators misread; OpenAPI 3.0 says it
 * as one schema: `{type: string, enum: [..., null], nullable: true}`.
 */
function foldNullableUnions(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) foldNullableUnions(n);
    return;
  }
  const n = node as Json;
  const any = n.anyOf as Json[] | undefined;
  if (Array.isArray(any) && any.length === 2 && any.some(isNullMarker)) {
    const other = any.find((x) => !isNullMarker(x)) as Json;
    delete n.anyOf;
    Object.assign(n, other, { nullable: true });
    if (Array.isArray(other.enum)) {
      n.enum = [...other.enum, null];
      if (n.type === undefined && other.enum.every((v: unknown) => typeof v === 'string')) n.type = 'string';
    }
  }
  for (const v of Object.values(n)) foldNullableUnions(v);
}

export interface CompleteOptions {
  /** the CLI noun of a kind (`vms` → `vm`); undefined for a path that is not a kind */
  singularOf(kind: string): string | undefined;
  /** the kind's cross-field rules of its create body (KindContract.createRules) */
  createRulesOf(kind: string): Record<string, unknown> | undefined;
}

/** the create body as documented: its schema plus the rules between its fields */
function withRules(op: Operation, rules: Record<string, unknown>): void {
  const media = (op.requestBody?.content as Json | undefined)?.['application/json'] as Json | undefined;
  if (!media?.schema) return;
  const { description, ...keywords } = rules;
  const schema = { ...(media.schema as Json), ...keywords };
  if (typeof description === 'string')
    schema.description = [(media.schema as Json).description, `Rule: ${description}.`]
      .filter(Boolean)
      .join(' ');
  media.schema = schema;
}

export function completeDocument(doc: Json, opts: CompleteOptions): Json {
  const info = doc.info as Json;
  info.license = { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' };
  doc.servers = [{ url: '/', description: 'the management node that serves this document' }];
  doc.tags = Object.entries(DOMAINS).map(([name, d]) => ({ name, description: d.description }));
  const components = (doc.components ?? {}) as Json;
  doc.components = components;
  components.schemas = { ...((components.schemas as Json) ?? {}), Error: ERROR_SCHEMA };
  components.responses = Object.fromEntries(
    Object.entries(ERROR_RESPONSES).map(([status, description]) => [
      `Error${status}`,
      { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    ]),
  );

  foldNullableUnions(doc.paths);
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      const group = op.tags?.[0] ?? '';
      const kind = path.replace(/^\/v1\//, '').split('/')[0] ?? '';
      const isKind = opts.singularOf(kind) !== undefined;
      op.tags = [domainOf(group) ?? group];
      op['x-group'] = group;
      op.operationId ??= operationIdFor(method, path, opts.singularOf);
      if (PUBLIC_PATHS.has(path)) op.security = [];
      const rules = opts.createRulesOf(kind);
      if (rules && method === 'post' && path === `/v1/${kind}`) withRules(op, rules);
      if (isKind && method === 'get' && path === `/v1/${kind}`) op.parameters = [...LIST_PARAMETERS];
      const responses = (op.responses ?? {}) as Record<string, Json>;
      const takesWait = isKind && method !== 'get' && responses['202'] !== undefined;
      if (takesWait) op.parameters = [...(op.parameters ?? []), WAIT_PARAMETER];
      for (const [status, r] of Object.entries(responses))
        if (r.description === 'Default Response' && SUCCESS_TEXT[status])
          r.description = SUCCESS_TEXT[status];
      if (takesWait && responses['200'])
        responses['200'].description = 'the finished job (with ?wait=true, when it ends within 60 s)';
      if (path === '/v1/console')
        responses['101'] ??= {
          description: 'Switching Protocols: the WebSocket carrying the VM’s RFB stream',
        };
      for (const status of errorStatuses(method, path, op, isKind))
        responses[status] ??= { $ref: `#/components/responses/Error${status}` };
      op.responses = responses;
    }
  }
  return doc;
}
