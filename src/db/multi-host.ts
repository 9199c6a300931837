/**
 * Multi-host connection strings, as libpq reads them and node-postgres does not:
 * `postgres://u:p@h1:5432,h2:5433/nimbus?target_session_attrs=read-write` names every server of a
 * replicated PostgreSQL (docs/cluster.md "A highly available database"); a connection goes to the
 * first one, in the order written, that answers — and, with `read-write` (or libpq's `primary`),
 * that accepts writes, i.e. the primary.
 *
 * How: `pgTarget(url)` gives pg a connection string with one host and a Client class that, before
 * connecting, asks a ServerFinder for the server to use. The finder remembers the primary it found
 * last; when a connection to it fails, ends unexpectedly or finds it read-only, it forgets it, and
 * the next connection probes every host in order again (one short connection each: `select
 * pg_is_in_recovery()` and `transaction_read_only`) — and while none is the primary (a failover
 * under way), again every 250 ms for most of the connection's timeout, so a statement issued
 * during a failover waits for the new primary instead of failing. One finder per URL in the
 * process, so the node's pool, heartbeat, health probe and event relay share one search.
 *
 * A URL with one host gets pg's own Client and the URL unchanged: exactly the behaviour before.
 */
import pg from 'pg';

export interface HostPort {
  host: string;
  port: number;
}

export type SessionAttrs = 'any' | 'read-write';

export interface MultiHostUrl {
  hosts: HostPort[];
  /** `read-write` (libpq's read-write or primary): only the server that accepts writes */
  sessionAttrs: SessionAttrs;
  /** for each host, the URL naming that host alone, without target_session_attrs (for pg's parser) */
  urls: string[];
}

const DEFAULT_PORT = 5432;
/** scheme, optional user info, the host list, and the rest (path, query, fragment) */
const URL_PARTS = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;
const TSA = 'target_session_attrs';

function urlError(message: string): Error {
  return new Error(`database URL: ${message}`);
}

function parseHost(part: string, index: number): HostPort {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d*))?$/.exec(part);
  if (!m) throw urlError(`host ${index + 1} ('${part}') is not host[:port]`);
  const port = m[2] ? Number(m[2]) : DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw urlError(`host ${index + 1} ('${part}'): port must be 1 to 65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function formatHost(h: HostPort): string {
  return `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
}

/**
 * Splits a multi-host URL; undefined for a URL with one host (pg reads it itself) or that is not a
 * postgres:// URL. Throws, naming the part, on an empty host, a bad port or an unsupported
 * target_session_attrs.
 */
export function parseMultiHostUrl(url: string): MultiHostUrl | undefined {
  const m = URL_PARTS.exec(url);
  if (!m || !m[3]!.includes(',')) return undefined;
  const [, scheme, userInfo = '', hostList, rest] = m as unknown as [string, string, string, string, string];
  const hosts = hostList.split(',').map((part, i) => {
    if (part === '') throw urlError(`host ${i + 1} is empty`);
    return parseHost(part, i);
  });
  // the rest: /database?query#fragment; target_session_attrs is read here and dropped for pg
  const q = rest.indexOf('?');
  let sessionAttrs: SessionAttrs = 'any';
  let path = rest;
  if (q >= 0) {
    const hash = rest.indexOf('#', q);
    const query = rest.slice(q + 1, hash < 0 ? undefined : hash);
    const kept: string[] = [];
    for (const param of query.split('&')) {
      const [key, value = ''] = param.split('=');
      if (key !== TSA) {
        if (param !== '') kept.push(param);
        continue;
      }
      const wanted = decodeURIComponent(value);
      if (wanted === 'read-write' || wanted === 'primary') sessionAttrs = 'read-write';
      else if (wanted === 'any') sessionAttrs = 'any';
      else
        throw urlError(
          `${TSA}=${wanted} is not supported: use read-write (the primary: Nimbus writes) or any`,
        );
    }
    path = rest.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : '');
  }
  return { hosts, sessionAttrs, urls: hosts.map((h) => `${scheme}${userInfo}${formatHost(h)}${path}`) };
}

/** `host:port` for messages. */
export function hostLabel(h: HostPort): string {
  return formatHost(h);
}

/** What a server is, as a connection sees it. */
export type ServerMode = 'read-write' | 'read-only';

/** Whether the connected server takes writes: not a standby, and not read-only by default. */
export async function serverMode(client: pg.ClientBase): Promise<ServerMode> {
  const { rows } = await client.query<{ readOnly: boolean }>(
    `select pg_is_in_recovery() or current_setting('transaction_read_only') = 'on' as "readOnly"`,
  );
  return rows[0]?.readOnly ? 'read-only' : 'read-write';
}

/** The error when no listed server will do: SQLSTATE 08001, so callers see a lost connection. */
function noServer(message: string): Error {
  return Object.assign(new Error(message), { code: '08001' });
}

/** between two searches that found no suitable server */
const SEARCH_PAUSE_MS = 250;
/** how long a search waits for one host to answer */
const PROBE_TIMEOUT_MS = 5000;
/** how long a connection without a connection timeout (the event relay's) waits for a primary */
const DEFAULT_SEARCH_MS = 15_000;

/** Finds the server to connect to among the hosts, remembering it until told it failed. */
export class ServerFinder {
  private current: HostPort | undefined;
  private finding: Promise<HostPort> | undefined;

  constructor(
    readonly target: Pick<MultiHostUrl, 'hosts' | 'sessionAttrs'>,
    /** connects to one host and says what it is; throws when it cannot be reached */
    private readonly check: (host: HostPort, index: number) => Promise<ServerMode>,
  ) {}

  /**
   * The server to use: the one found last, or the first suitable one in the listed order. With
   * `waitMs`, a search that finds none is made again (every 250 ms) until one is found or the
   * time is up: a failover's few seconds without a primary are waited out, not failed.
   */
  async find(waitMs = 0): Promise<HostPort> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        return await this.findOnce();
      } catch (err) {
        if (Date.now() + SEARCH_PAUSE_MS > deadline) throw err;
        await new Promise((r) => setTimeout(r, SEARCH_PAUSE_MS));
      }
    }
  }

  private findOnce(): Promise<HostPort> {
    if (this.current) return Promise.resolve(this.current);
    // callers that ask at once (a pool filling up) share one search
    this.finding ??= this.search().finally(() => {
      this.finding = undefined;
    });
    return this.finding;
  }

  /** A connection to `host` failed or found it unsuitable: the next find searches again. */
  forget(host: HostPort): void {
    if (this.current === host) this.current = undefined;
  }

  private async search(): Promise<HostPort> {
    const problems: string[] = [];
    for (const [i, host] of this.target.hosts.entries()) {
      try {
        const mode = await this.check(host, i);
        if (this.target.sessionAttrs === 'any' || mode === 'read-write') {
          this.current = host;
          return host;
        }
        problems.push(`${formatHost(host)} is read-only (a standby)`);
      } catch (err) {
        problems.push(`${formatHost(host)}: ${(err as Error).message}`);
      }
    }
    const wanted = this.target.sessionAttrs === 'read-write' ? 'read-write server' : 'server';
    throw noServer(`no ${wanted} among the database hosts: ${problems.join('; ')}`);
  }
}

/** pg's Client, connecting to the server the finder names (and checking it is still suitable). */
function finderClient(finder: ServerFinder): typeof pg.Client {
  const readWrite = finder.target.sessionAttrs === 'read-write';
  class FinderClient extends pg.Client {
    /** the connection timeout pg-pool enforces (0: none) */
    private readonly timeoutMs: number;

    constructor(config?: string | pg.ClientConfig) {
      super(config);
      this.timeoutMs = (typeof config === 'object' && config.connectionTimeoutMillis) || 0;
    }

    override connect(): Promise<void>;
    override connect(callback: (err: Error) => void): void;
    override connect(callback?: (err: Error) => void): Promise<void> | undefined {
      const done = this.connectToServer();
      if (!callback) return done;
      // pg-pool connects with a callback: (null) on success
      done.then(() => callback(null as unknown as Error), callback);
      return undefined;
    }

    private async connectToServer(): Promise<void> {
      const started = Date.now();
      // most of the connection's timeout; the rest is for connecting to the server found
      const server = await finder.find(this.timeoutMs ? this.timeoutMs * 0.75 : DEFAULT_SEARCH_MS);
      // a slow search (hosts that do not answer) can outlast the timeout: pg-pool gave up by then
      if (this.timeoutMs && Date.now() - started >= this.timeoutMs)
        throw noServer('timeout exceeded when trying to connect (looking for the primary)');
      // the constructor read the first host from the URL; pg reads these when it connects
      this.host = server.host;
      this.port = server.port;
      const params = (this as unknown as { connectionParameters: HostPort }).connectionParameters;
      params.host = server.host;
      params.port = server.port;
      try {
        await super.connect();
        // found a while ago: a server restarted since (Patroni demotes by restarting) is a standby now
        if (readWrite && (await serverMode(this)) === 'read-only') {
          await this.end().catch(() => {});
          throw noServer(`${formatHost(server)} is read-only now (no longer the primary)`);
        }
      } catch (err) {
        finder.forget(server);
        throw err;
      }
      // the server went away under this connection: look for the primary again on the next one
      this.on('error', () => finder.forget(server));
    }
  }
  return FinderClient;
}

export interface PgTarget {
  /** the connection string for pg (one host) */
  connectionString: string;
  /** the Client class for pg.Pool's `Client` option or `new`: pg's own for a one-host URL */
  Client: typeof pg.Client;
}

/** one finder (and its Client class) per multi-host URL in this process */
const targets = new Map<string, PgTarget>();

/** How pg reaches the database `url` names (see the header). */
export function pgTarget(url: string): PgTarget {
  const parsed = parseMultiHostUrl(url);
  if (!parsed) return { connectionString: url, Client: pg.Client };
  let target = targets.get(url);
  if (!target) {
    const finder = new ServerFinder(parsed, async (_host, i) => {
      const client = new pg.Client({
        connectionString: parsed.urls[i]!,
        connectionTimeoutMillis: PROBE_TIMEOUT_MS,
        query_timeout: PROBE_TIMEOUT_MS,
        application_name: 'nimbus-find-primary',
      });
      client.on('error', () => {}); // a server ending the probe mid-way fails the probe, nothing more
      try {
        await client.connect();
        return await serverMode(client);
      } finally {
        await client.end().catch(() => {});
      }
    });
    target = { connectionString: parsed.urls[0]!, Client: finderClient(finder) };
    targets.set(url, target);
  }
  return target;
}
