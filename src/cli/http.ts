/**
 * The CLI's HTTP client. It knows the server's fixed conventions (bearer token, JSON bodies,
 * `{ error: {...} }` error bodies) and turns every failure into an ApiError or a ConnectionError,
 * so commands only deal with successful answers.
 */
import { ApiError, ConnectionError, toErrorInfo, UsageError } from './errors.js';

/** Repeated keys matter (`q=a&q=b`), so a query is a list of pairs rather than a record. */
export type Query = Array<[string, string]>;

export interface ApiResponse {
  status: number;
  body: unknown;
  location: string | null;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** login is the only call made without a token */
  auth?: boolean;
}

const TIMEOUT_MS = 90_000;

export function normalizeUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

export class ApiClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly token: string | undefined,
  ) {
    this.baseUrl = normalizeUrl(baseUrl);
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const qs = opts.query && opts.query.length > 0 ? `?${new URLSearchParams(opts.query).toString()}` : '';
    const headers: Record<string, string> = { accept: 'application/json' };
    // no token (logged out): say so here rather than send a request the server must refuse
    if (opts.auth !== false && !this.token)
      throw new UsageError('not logged in (no session): run `nimbus login`');
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}${qs}`, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      throw new ConnectionError(this.baseUrl, fetchFailureReason(err));
    }
    const body = await readBody(res);
    if (res.status >= 400) throw new ApiError(res.status, errorInfoOf(res, body));
    return { status: res.status, body, location: res.headers.get('location') };
  }

  /**
   * A long-lived GET whose body is read as it arrives (the event stream). No timeout: it lasts
   * until the server ends it or `signal` aborts it.
   */
  async stream(path: string, query: Query, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const qs = query.length > 0 ? `?${new URLSearchParams(query).toString()}` : '';
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}${qs}`, { headers, ...(signal ? { signal } : {}) });
    } catch (err) {
      throw new ConnectionError(this.baseUrl, fetchFailureReason(err));
    }
    if (res.status >= 400) throw new ApiError(res.status, errorInfoOf(res, await readBody(res)));
    if (!res.body) throw new ConnectionError(this.baseUrl, 'the stream ended before it began');
    return res.body;
  }

  get(path: string, query?: Query): Promise<ApiResponse> {
    return this.request('GET', path, query ? { query } : {});
  }
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // A proxy in front of the server may answer with HTML or plain text.
    return text;
  }
}

function errorInfoOf(res: Response, body: unknown) {
  const fromBody =
    typeof body === 'object' && body !== null && 'error' in body ? toErrorInfo(body.error) : undefined;
  if (fromBody) return fromBody;
  const text = typeof body === 'string' ? body.trim().slice(0, 200) : '';
  return { code: `HTTP_${res.status}`, message: text || res.statusText || `HTTP status ${res.status}` };
}

const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'unknown host',
  EHOSTUNREACH: 'host unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** fetch hides the socket error (ECONNREFUSED, ENOTFOUND…) in `cause`. */
function fetchFailureReason(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
    const cause: unknown = err.cause;
    if (typeof cause === 'object' && cause !== null) {
      if ('code' in cause && typeof cause.code === 'string') return SOCKET_ERRORS[cause.code] ?? cause.code;
      if ('message' in cause && typeof cause.message === 'string') return cause.message;
    }
    return err.message;
  }
  return String(err);
}
