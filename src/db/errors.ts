/** Translates PostgreSQL constraint violations into CloudErrors at the store boundary. */
import { CloudError } from '../kernel/errors.js';

interface PgError {
  code?: string;
  constraint?: string;
  detail?: string;
}

export function pgCode(err: unknown): string | undefined {
  return (err as PgError | null)?.code;
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as PgError;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

export function isForeignKeyViolation(err: unknown): boolean {
  return pgCode(err) === '23503';
}

/** A unique violation becomes AlreadyExists naming what clashed; anything else passes through. */
export function mapUnique(err: unknown, code: string, message: string): unknown {
  if (isUniqueViolation(err)) {
    return new CloudError('AlreadyExists', code, message, {
      details: { constraint: (err as PgError).constraint },
    });
  }
  return err;
}

/**
 * SQLSTATE classes and socket errors that mean the connection (not the statement) failed: the
 * server ended the session (57P01 admin shutdown, e.g. pg_terminate_backend; 57P02/57P03 a
 * crash or restart), the link broke (class 08; 08001 also when no listed host is the primary,
 * multi-host.ts), or the server cannot be reached. 25006 (a write refused by a read-only server)
 * means the connection is on a standby, not the primary: dropped and retried like a lost one.
 */
const CONNECTION_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '25006',
]);
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTCONN',
]);
const CONNECTION_MESSAGES =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|terminating connection|timeout exceeded when trying to connect|Connection is closed/i;

/** Whether the error is a lost or refused connection (the statement may be retried on another). */
export function isConnectionLost(err: unknown): boolean {
  if (err instanceof CloudError) return err.code === 'DATABASE_UNAVAILABLE';
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && (CONNECTION_CODES.has(e.code) || SOCKET_CODES.has(e.code))) return true;
  return typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message);
}

/** A lost connection as the retryable CloudError callers see; any other error passes through. */
export function mapConnectionLost(err: unknown): unknown {
  if (err instanceof CloudError || !isConnectionLost(err)) return err;
  return new CloudError(
    'Unavailable',
    'DATABASE_UNAVAILABLE',
    `the database connection was lost: ${(err as Error).message}`,
    { retryable: true, cause: err },
  );
}
