/**
 * CloudError: the one error type that crosses module and wire boundaries.
 * Invariant: `code` is stable and searchable (UPPER_SNAKE), `reason` is one of a small set
 * and alone decides the HTTP status (see STATUS_BY_REASON, the only such table).
 */

export const REASONS = [
  'NotFound',
  'AlreadyExists',
  'Conflict',
  'Invalid',
  'Forbidden',
  'Unauthenticated',
  'Throttled',
  'Unavailable',
  'Timeout',
  'Internal',
] as const;
export type Reason = (typeof REASONS)[number];

export const STATUS_BY_REASON: Record<Reason, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 400,
  Forbidden: 403,
  Unauthenticated: 401,
  /** too many attempts (failed logins): `details.retryAfterSeconds`, sent as Retry-After */
  Throttled: 429,
  Unavailable: 503,
  Timeout: 504,
  Internal: 500,
};

/** One bad field in a request: every bad field is reported at once. */
export interface FieldProblem {
  field: string;
  problem: string;
}

/** The serialisable shape: what jobs store and what clients receive. */
export interface ErrorBody {
  code: string;
  reason: Reason;
  message: string;
  details?: Record<string, unknown>;
  retryable?: boolean;
  cause?: ErrorBody;
}

export class CloudError extends Error {
  readonly code: string;
  readonly reason: Reason;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(
    reason: Reason,
    code: string,
    message: string,
    opts: { details?: Record<string, unknown>; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CloudError';
    this.reason = reason;
    this.code = code;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }

  get status(): number {
    return STATUS_BY_REASON[this.reason];
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, reason: this.reason, message: this.message };
    if (this.details !== undefined) body.details = this.details;
    if (this.retryable) body.retryable = true;
    if (this.cause !== undefined) body.cause = toErrorBody(this.cause);
    return body;
  }
}

/**
 * An error PostgreSQL answered (the driver's DatabaseError: a SQLSTATE `code` and a `severity`).
 * Its text names tables, columns and values: it must never reach a user, in an HTTP answer or in
 * a failed job's `error`.
 */
export function isDatabaseError(err: unknown): err is Error & { code: string; severity: string } {
  const e = err as { code?: unknown; severity?: unknown } | null;
  return (
    err instanceof Error &&
    typeof e?.severity === 'string' &&
    typeof e.code === 'string' &&
    /^[0-9A-Z]{5}$/.test(e.code)
  );
}

function internalMessage(err: unknown): string {
  if (isDatabaseError(err))
    return `internal error (database SQLSTATE ${err.code}); the job or request id identifies it in the server log`;
  return err instanceof Error ? err.message : String(err);
}

/** Any thrown value as an ErrorBody; unknown errors become Internal without leaking stacks. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof CloudError) return err.toBody();
  return { code: 'INTERNAL_ERROR', reason: 'Internal', message: internalMessage(err) };
}

export function asCloudError(err: unknown): CloudError {
  if (err instanceof CloudError) return err;
  return new CloudError('Internal', 'INTERNAL_ERROR', internalMessage(err), { cause: err });
}

// Constructors for the common cases keep call sites short and codes consistent.

export function notFound(kind: string, id: string): CloudError {
  const code = `${kind.replace(/-/g, '_').toUpperCase()}_NOT_FOUND`;
  return new CloudError('NotFound', code, `${kind} ${id} not found`, { details: { kind, uuid: id } });
}

export function invalid(problems: FieldProblem[], code = 'INVALID_ARGUMENT'): CloudError {
  const message = problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
  return new CloudError('Invalid', code, message, { details: { fields: problems } });
}

/**
 * The one rule for a missing resource: named in the path → 404 (notFound); named in the body or
 * query → 400 naming the field, with code `<KIND>_NOT_FOUND` (this). The caller cannot tell
 * another account's resource from one that does not exist either way.
 */
export function missingReference(field: string, kind: string, id: string): CloudError {
  const code = `${kind.replace(/-/g, '_').toUpperCase()}_NOT_FOUND`;
  return new CloudError('Invalid', code, `${field}: no ${kind} ${id}`, {
    details: { fields: [{ field, problem: `no ${kind} ${id}` }], kind, uuid: id },
  });
}

export function invalidField(field: string, problem: string, code = 'INVALID_ARGUMENT'): CloudError {
  return invalid([{ field, problem }], code);
}

export function conflict(code: string, message: string, details?: Record<string, unknown>): CloudError {
  return new CloudError('Conflict', code, message, details === undefined ? {} : { details });
}

export function forbidden(message = 'only the admin account may do this', code = 'FORBIDDEN'): CloudError {
  return new CloudError('Forbidden', code, message);
}
