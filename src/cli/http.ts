/**
 * The CLI's HTTP client. It knows the server's fixed conventions (bearer token, JSON bodies,
 * `{ error: {...} }` error bodies) and turns every failure into an ApiError or a ConnectionError,
 * so commands only deal with successful answers.
 * It speaks through node:http (node:https for https URLs), not fetch: loading fetch's
 * implementation costs a CLI process about a quarter of a second of CPU, more than everything
 * else a `vm list` does (bench/cli.ts). One keep-alive agent carries a command's several requests.
 *
 * Several servers (a cluster without a load balancer, or several balancers): the base URL may
 * list them separated by commas. A request goes to the one that last answered (the first at
 * start) and moves on to the next only when the request provably did nothing there — the
 * connection was refused or could not be made, or the node answered 503 NODE_DRAINING (refused
 * before it was handled) — or, for a GET, on any connection failure. A POST whose connection broke
 * mid-way is never sent again: it may have been accepted (its job then shows in `nimbus job list`).
 */
import type { Agent, request as httpRequest, IncomingMessage } from 'node:http';
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

/** The servers a `--url`/profile/NIMBUS_URL value names: comma-separated, normalized. */
export function splitUrls(urls: string): string[] {
  return urls
    .split(',')
    .map(normalizeUrl)
    .filter((u) => u.length > 0);
}

/** connection failures that prove the request never reached a server */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** Whether `err` (from `method` to one server) may be retried on the next server. */
export function mayFailOver(method: string, err: unknown): boolean {
  if (err instanceof ApiError) return err.status === 503 && err.info.code === 'NODE_DRAINING';
  if (!(err instanceof ConnectionError)) return false;
  return NOT_SENT.has(err.code ?? '') || method === 'GET' || method === 'HEAD';
}

interface Transport {
  request: typeof httpRequest;
  agent: Agent;
}

const transports: Record<string, Promise<Transport>> = {};

/**
 * http or https, each loaded on first use (`--help` and `--version` load neither); idle sockets
 * of the keep-alive agent never keep the process alive.
 */
function transport(protocol: string): Promise<Transport> {
  transports[protocol] ??= (async () => {
    const mod = protocol === 'https:' ? await import('node:https') : await import('node:http');
    return { request: mod.request, agent: new mod.Agent({ keepAlive: true }) };
  })();
  return transports[protocol] as Promise<Transport>;
}

export class ApiClient {
  readonly baseUrls: string[];
  /** the server that answered last: requests go there first */
  private current = 0;

  constructor(
    baseUrl: string,
    private readonly token: string | undefined,
  ) {
    this.baseUrls = splitUrls(baseUrl);
    if (this.baseUrls.length === 0) this.baseUrls = [normalizeUrl(baseUrl)];
  }

  get baseUrl(): string {
    return this.baseUrls[this.current] as string;
  }

  /** Runs `attempt` on the current server, then on the next ones while `mayFailOver` allows. */
  private async failOver<T>(method: string, attempt: () => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let tried = 0; tried < this.baseUrls.length; tried++) {
      try {
        return await attempt();
      } catch (err) {
        lastError = err;
        if (!mayFailOver(method, err) || tried === this.baseUrls.length - 1) throw err;
        this.current = (this.current + 1) % this.baseUrls.length;
      }
    }
    throw lastError;
  }

  private headers(opts: RequestOptions, accept: string): Record<string, string> {
    const headers: Record<string, string> = { accept };
    // no token (logged out): say so here rather than send a request the server must refuse
    if (opts.auth !== false && !this.token)
      throw new UsageError('not logged in (no session): run `nimbus login`');
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** Sends one request and hands back the response head and its body stream. */
  private async send(
    method: string,
    path: string,
    query: Query,
    headers: Record<string, string>,
    payload: string | undefined,
    timeout: boolean,
  ): Promise<IncomingMessage> {
    const qs = query.length > 0 ? `?${new URLSearchParams(query).toString()}` : '';
    let url: URL;
    try {
      url = new URL(`${this.baseUrl}${path}${qs}`);
    } catch {
      throw new ConnectionError(this.baseUrl, 'not a valid URL');
    }
    const t = await transport(url.protocol);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const req = t.request(url, { method, headers, agent: t.agent }, resolve);
      req.on('error', (err) => reject(new ConnectionError(this.baseUrl, socketReason(err), socketCode(err))));
      if (timeout) {
        req.setTimeout(TIMEOUT_MS, () =>
          req.destroy(Object.assign(new Error('timeout'), { code: 'CLI_TIMEOUT' })),
        );
      }
      req.end(payload);
    });
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    return this.failOver(method, () => this.requestOnce(method, path, opts));
  }

  private async requestOnce(method: string, path: string, opts: RequestOptions): Promise<ApiResponse> {
    const headers = this.headers(opts, 'application/json');
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.send(method, path, opts.query ?? [], headers, payload, true);
    const text = await readText(res, this.baseUrl);
    const body = parseBody(text);
    const status = res.statusCode ?? 0;
    if (status >= 400) throw new ApiError(status, errorInfoOf(status, res.statusMessage, body));
    const location = res.headers.location;
    return { status, body, location: typeof location === 'string' ? location : null };
  }

  /**
   * A long-lived GET whose body is read as it arrives (the event stream). No timeout: it lasts
   * until the server ends it or `signal` aborts it.
   */
  stream(path: string, query: Query, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    return this.failOver('GET', () => this.streamOnce(path, query, signal));
  }

  private async streamOnce(
    path: string,
    query: Query,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    const res = await this.send('GET', path, query, this.headers({}, 'text/event-stream'), undefined, false);
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const body = parseBody(await readText(res, this.baseUrl));
      throw new ApiError(status, errorInfoOf(status, res.statusMessage, body));
    }
    signal?.addEventListener('abort', () => res.destroy(), { once: true });
    return res;
  }

  get(path: string, query?: Query): Promise<ApiResponse> {
    return this.request('GET', path, query ? { query } : {});
  }
}

function readText(res: IncomingMessage, baseUrl: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(new ConnectionError(baseUrl, socketReason(err))));
  });
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // A proxy in front of the server may answer with HTML or plain text.
    return text;
  }
}

function errorInfoOf(status: number, statusText: string | undefined, body: unknown) {
  const fromBody =
    typeof body === 'object' && body !== null && 'error' in body ? toErrorInfo(body.error) : undefined;
  if (fromBody) return fromBody;
  const text = typeof body === 'string' ? body.trim().slice(0, 200) : '';
  return { code: `HTTP_${status}`, message: text || statusText || `HTTP status ${status}` };
}

const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'unknown host',
  EHOSTUNREACH: 'host unreachable',
  ETIMEDOUT: 'connection timed out',
  CLI_TIMEOUT: `no answer within ${TIMEOUT_MS / 1000} s`,
};

function socketCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

function socketReason(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return SOCKET_ERRORS[err.code] ?? err.code;
  return err instanceof Error ? err.message : String(err);
}
