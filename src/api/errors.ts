/**
 * One error shape for every failure: `{ error: { code, reason, message, details } }`, status from
 * the reason (kernel/errors.ts). Validation failures list every bad field. No stack traces leave.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isForeignKeyViolation } from '../db/errors.js';
import { CloudError, type FieldProblem, invalid } from '../kernel/errors.js';

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldOf(issue: AjvIssue, context: string | undefined): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const extra = (issue.params?.missingProperty ?? issue.params?.additionalProperty) as string | undefined;
  const field = [path, extra].filter(Boolean).join('.');
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

export function toCloudError(err: unknown): CloudError {
  if (err instanceof CloudError) return err;
  const fe = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (fe?.validation) {
    const problems: FieldProblem[] = fe.validation
      .filter((i) => i.keyword !== 'anyOf' && i.keyword !== 'if')
      .map((i) => ({ field: fieldOf(i, fe.validationContext), problem: problemOf(i) }));
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
  if (isForeignKeyViolation(err)) {
    return new CloudError('Conflict', 'RESOURCE_IN_USE', 'the resource is referenced by other resources');
  }
  return new CloudError(
    'Internal',
    'INTERNAL_ERROR',
    'internal error; the request id identifies it in the server log',
  );
}

export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const ce = toCloudError(err);
  if (ce.reason === 'Internal') request.log.error({ err }, 'request failed');
  else request.log.info({ code: ce.code }, ce.message);
  void reply.code(ce.status).send({ error: { ...ce.toBody(), cause: undefined } });
}
