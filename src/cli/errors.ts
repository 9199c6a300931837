/**
 * What the CLI can fail with, and how each failure is shown. Every failure becomes a few lines on
 * stderr and an exit code (1: the server or a job said no, 2: the command line was wrong); the
 * user never sees a stack trace, because an unexpected exception is reported by its message only.
 */
import pc from 'picocolors';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface ErrorInfo {
  code: string;
  reason?: string;
  message: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Every failure the CLI expects knows its own exit code and how to explain itself. */
export abstract class CliFailure extends Error {
  abstract readonly exitCode: number;
  abstract lines(color: boolean): string[];
}

const label = (color: boolean) => (color ? pc.red('error') : 'error');

/** The command line itself is wrong: nothing was sent (or what was sent could not be chosen). */
export class UsageError extends CliFailure {
  readonly exitCode = EXIT_USAGE;
  lines(color: boolean): string[] {
    return [`${label(color)}: ${this.message}`];
  }
}

/** The server answered with its error body (or something that is not one: status only). */
export class ApiError extends CliFailure {
  readonly exitCode = EXIT_FAILURE;
  /** a refused login: the hint to log in again would only repeat what just failed */
  duringLogin = false;
  constructor(
    readonly status: number,
    readonly info: ErrorInfo,
  ) {
    super(info.message);
  }
  lines(color: boolean): string[] {
    if (this.status !== 401 || this.duringLogin) return errorLines(this.info, color);
    // The server speaks HTTP to API clients ("send Authorization: Bearer …"); a CLI user only
    // needs to know the session is not valid and what to do about it, said once.
    const message = /authorization|bearer|\/v1\//i.test(this.info.message)
      ? 'no valid session'
      : this.info.message;
    const lines = errorLines({ ...this.info, message }, color);
    if (!/log ?in/i.test(message))
      lines.push('  (the session is missing, expired or revoked: run `nimbus login`)');
    return lines;
  }
}

/** A failure found by the CLI itself but shaped like the server's (a name that matches nothing). */
export class LocalError extends CliFailure {
  readonly exitCode = EXIT_FAILURE;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  lines(color: boolean): string[] {
    return [`${label(color)} ${this.code}: ${this.message}`];
  }
}

/** Nothing answered at the URL: the user most likely has the wrong URL or the server is down. */
export class ConnectionError extends CliFailure {
  readonly exitCode = EXIT_FAILURE;
  constructor(
    readonly url: string,
    readonly reason: string,
    /** the socket error's code (ECONNREFUSED …), when there was one */
    readonly code?: string,
  ) {
    super(`cannot reach the Nimbus server at ${url} (${reason})`);
  }
  lines(color: boolean): string[] {
    return [
      `${label(color)}: ${this.message}`,
      '  is the server running? to use another one: nimbus login --url <url>',
    ];
  }
}

/** A job finished without succeeding; carries the job's own error. */
export class JobFailedError extends CliFailure {
  readonly exitCode = EXIT_FAILURE;
  constructor(
    readonly jobUuid: string,
    readonly state: string,
    readonly info: ErrorInfo | undefined,
  ) {
    super(info?.message ?? `job ${jobUuid} ended ${state}`);
  }
  lines(color: boolean): string[] {
    const info = this.info ?? { code: `JOB_${this.state.toUpperCase()}`, message: this.message };
    return [...errorLines(info, color), `  (job ${this.jobUuid} ${this.state})`];
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an error object leniently: a job's `error` is typed unknown in the contract. */
export function toErrorInfo(v: unknown): ErrorInfo | undefined {
  if (!isRecord(v)) return undefined;
  const code = typeof v.code === 'string' ? v.code : 'ERROR';
  const message = typeof v.message === 'string' ? v.message : JSON.stringify(v);
  const info: ErrorInfo = { code, message };
  if (typeof v.reason === 'string') info.reason = v.reason;
  if (isRecord(v.details)) info.details = v.details;
  if (v.cause !== undefined && v.cause !== null) info.cause = v.cause;
  return info;
}

function errorLines(info: ErrorInfo, color: boolean): string[] {
  const lines = [`${label(color)} ${info.code}: ${info.message}`];
  const fields = info.details?.fields;
  if (Array.isArray(fields)) {
    for (const f of fields) {
      if (isRecord(f)) lines.push(`  - ${String(f.field ?? '?')}: ${String(f.problem ?? 'invalid')}`);
    }
  }
  // Causes nest: a job failure usually wraps the agent's or driver's own error.
  let cause = info.cause;
  for (let depth = 0; cause !== undefined && depth < 10; depth++) {
    const c = toErrorInfo(cause);
    if (!c) {
      lines.push(`  caused by: ${String(cause)}`);
      break;
    }
    lines.push(`  caused by ${c.code}: ${c.message}`);
    cause = c.cause;
  }
  return lines;
}

/** The text (for stderr) and exit code of any error that reaches the top of the CLI. */
export function describeError(err: unknown, color = false): { text: string; exitCode: number } {
  if (err instanceof CliFailure) return { text: err.lines(color).join('\n'), exitCode: err.exitCode };
  const message = err instanceof Error ? err.message : String(err);
  return { text: `${label(color)}: ${message}`, exitCode: EXIT_FAILURE };
}
