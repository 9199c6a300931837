/**
 * One error shape for every failure: `{ error: { code, reason, message, details } }`, status from
 * the reason (kernel/errors.ts). Validation failures list every bad field. No stack traces leave,
 * and no database text: anything that is not a CloudError is an INTERNAL_ERROR whose real cause
 * is in the server log under the request id.
 *
 * The same shape for what the HTTP layer refuses before a route runs (over-long path parameter,
 * bad URL, over-large headers, unknown route). These keep their standard HTTP status (413, 414,
 * 415, 431: clients and proxies act on them) with reason Invalid; `details` is always an object.
 */
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isForeignKeyViolation } from '../db/errors.js';
import { CloudError, type FieldProblem, invalid } from '../kernel/errors.js';
import { nulFields, printable } from './input-guard.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the kind a route serves, singular (`vm`): names the resource of a 404/409 without details */
    kind?: string;
  }
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldOf(issue: AjvIssue, context: string | undefined): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const extra = (issue.params?.missingProperty ?? issue.params?.additionalProperty) as string | undefined;
  const field = printable([path, extra].filter(Boolean).join('.'));
  return field || context || 'body';
}

function problemOf(issue: AjvIssue): string {
  switch (issue.keyword) {
    case 'additionalProperties':
      return 'unknown field';
    case 'required':
      return 'is required';
    case 'format':
      return `must be a valid ${String(issue.params?.format)}`;
    default:
      return issue.message ?? 'is invalid';
  }
}

/** `request`, when given, adds the NUL problems of the whole request to a validation error's list. */
export function toCloudError(err: unknown, request?: FastifyRequest): CloudError {
  if (err instanceof CloudError) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (fe?.validation) {
    const problems: FieldProblem[] = fe.validation
      .filter((i) => i.keyword !== 'anyOf' && i.keyword !== 'if')
      .map((i) => ({ field: fieldOf(i, fe.validationContext), problem: problemOf(i) }));
    // every bad field at once: the NUL check (a preHandler) would otherwise only run on a second try
    if (request)
      for (const part of [request.params, request.query, request.body])
        for (const p of nulFields(part, ''))
          if (!problems.some((q) => q.field === p.field && q.problem === p.problem)) problems.push(p);
    return invalid(
      problems.length > 0 ? problems : [{ field: fe.validationContext ?? 'body', problem: fe.message }],
      'INVALID_REQUEST',
    );
  }
  if (
    fe?.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    fe?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    (fe?.statusCode === 400 && fe.code?.startsWith('FST_'))
  ) {
    return new CloudError('Invalid', 'INVALID_REQUEST', fe.message);
  }
  if (fe?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new CloudError(
      'Invalid',
      'UNSUPPORTED_MEDIA_TYPE',
      'send JSON with Content-Type: application/json',
    );
  }
  if (fe?.statusCode === 413) return new CloudError('Invalid', 'BODY_TOO_LARGE', fe.message);
  if (fe?.code === 'FST_ERR_MAX_PARAM_LENGTH')
    return new CloudError('Invalid', 'URI_TOO_LONG', 'a path parameter is too long', {
      details: { fields: [{ field: 'path', problem: 'a path parameter is longer than 100 characters' }] },
    });
  if (fe?.code === 'FST_ERR_BAD_URL')
    return new CloudError('Invalid', 'INVALID_URL', 'the URL is not valid (a bad percent-encoding?)', {
      details: { fields: [{ field: 'path', problem: 'is not a valid URL component' }] },
    });
  if (isForeignKeyViolation(err)) {
    return new CloudError('Conflict', 'RESOURCE_IN_USE', 'the resource is referenced by other resources');
  }
  return new CloudError(
    'Internal',
    'INTERNAL_ERROR',
    'internal error; the request id identifies it in the server log',
  );
}

/** HTTP statuses the HTTP layer itself answers with, kept so clients and proxies can act on them. */
const TRANSPORT_STATUS: Record<string, number> = {
  BODY_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
};

/**
 * The wire body. `details` is always an object. A NotFound or Conflict that says nothing more
 * itself, on a route about one resource, names that resource (`kind`, `uuid`); a unique
 * violation on a name constraint names the field.
 */
export function errorBodyFor(ce: CloudError, request?: FastifyRequest): Record<string, unknown> {
  const body = ce.toBody();
  const details: Record<string, unknown> = { ...(body.details ?? {}) };
  const subject = ce.reason === 'NotFound' || ce.reason === 'Conflict' || ce.reason === 'AlreadyExists';
  if (subject && body.details === undefined) {
    const kind = request?.routeOptions.config?.kind;
    const uuid = (request?.params as { uuid?: unknown } | undefined)?.uuid;
    if (kind) details.kind = kind;
    if (typeof uuid === 'string') details.uuid = uuid;
  }
  // `<table>_name_key`, `users_account_name_key`: the name is what clashed
  if (typeof details.constraint === 'string' && /_name_key$/.test(details.constraint) && !details.field)
    details.field = 'name';
  return { error: { ...body, details, cause: undefined } };
}

/**
 * What every failure does whatever shape its body takes (this API's, or an OpenStack family's):
 * the CloudError it is, logged (an internal one with its cause), Retry-After when it says when.
 */
export function failureOf(err: unknown, request: FastifyRequest, reply: FastifyReply): CloudError {
  const ce = toCloudError(err, request);
  if (ce.reason === 'Internal') request.log.error({ err }, 'request failed');
  else request.log.info({ code: ce.code }, ce.message);
  const retryAfter = ce.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number')
    void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  return ce;
}

export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const ce = failureOf(err, request, reply);
  void reply.code(TRANSPORT_STATUS[ce.code] ?? ce.status).send(errorBodyFor(ce, request));
}

/** Fastify's own refusals before routing (bad URL, over-long parameter): the one shape. */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  errorHandler(err, request, reply);
}

/**
 * Errors node's HTTP parser raises before any request exists (headers over the size limit, a
 * malformed request line, a timeout): written on the socket in the one shape, then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let code = 'BAD_HTTP_REQUEST';
  let message = 'the HTTP request could not be parsed';
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    code = 'HEADERS_TOO_LARGE';
    message = 'the request line and headers exceed the size limit (16 KiB); send long queries in fewer bytes';
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    code = 'REQUEST_TIMEOUT';
    message = 'the request was not received in time';
  }
  const reason = status === 408 ? 'Timeout' : 'Invalid';
  const body = JSON.stringify({ error: { code, reason, message, details: {} } });
  const text = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status];
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${text}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroy(err);
}
