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
