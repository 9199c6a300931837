/**
 * Test support only: a small in-memory server speaking the API's HTTP conventions (bearer tokens,
 * error bodies, pages, 202 + Job + Location, job polling) so the CLI's end-to-end tests run the
 * real binary without the real server. It records every request for the tests to inspect.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  authorization: string | undefined;
}

type Row = Record<string, unknown>;

interface FakeJob {
  job: Row;
  /** job states shown by successive polls; the last one stays */
  script: Row[];
  polls: number;
}

export const PASSWORD = 'secret-pw';
export const ZONE = '0190a0b0-0000-7000-8000-00000000000a';
export const CLUSTER = '0190a0b0-0000-7000-8000-00000000000c';
const ACCOUNT = '0190a0b0-0000-7000-8000-0000000000ac';

const now = () => new Date().toISOString();

export class FakeServer {
  readonly requests: Recorded[] = [];
  readonly tokens = new Set<string>();
  readonly rows: Record<string, Row[]> = {
    zones: [{ uuid: ZONE, name: 'z1', state: 'Enabled', createdAt: now() }],
    clusters: [
      { uuid: CLUSTER, name: 'c1', hypervisorType: 'simulator', state: 'Enabled', zoneUuid: ZONE },
      { uuid: randomUUID(), name: 'dup', hypervisorType: 'simulator', state: 'Enabled', zoneUuid: ZONE },
      { uuid: randomUUID(), name: 'dup', hypervisorType: 'simulator', state: 'Disabled', zoneUuid: ZONE },
    ],
    hosts: [],
  };
  readonly jobs = new Map<string, FakeJob>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) =>
        send(res, 500, errorBody('INTERNAL', 'Internal', String(err))),
      );
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  find(method: string, path: string): Recorded[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text === '' ? undefined : JSON.parse(text);
    const method = req.method ?? 'GET';
    this.requests.push({
      method,
      path: url.pathname,
      query: url.searchParams,
      body,
      authorization: req.headers.authorization,
    });
    const parts = url.pathname.split('/').filter((p) => p !== '');

    if (url.pathname === '/v1/health') return send(res, 200, { status: 'ok', database: 'ok' });
    if (method === 'POST' && url.pathname === '/v1/auth/login') return this.login(res, body as Row);
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    if (!token || !this.tokens.has(token)) {
      return send(
        res,
        401,
        errorBody('UNAUTHENTICATED', 'Unauthenticated', 'missing, expired or revoked token'),
      );
    }
    if (method === 'POST' && url.pathname === '/v1/auth/logout') {
      this.tokens.delete(token);
      res.writeHead(204).end();
      return;
    }
    const [, kind, id, sub, action] = parts;
    if (!kind) return send(res, 404, errorBody('NOT_FOUND', 'NotFound', 'no route'));
    if (kind === 'jobs' && id && method === 'GET') return this.pollJob(res, id);
    const rows = this.rows[kind];
    if (!rows) return send(res, 404, errorBody('NOT_FOUND', 'NotFound', `no route /v1/${kind}`));
    if (method === 'GET' && !id) return this.list(res, rows, url.searchParams);
    if (method === 'POST' && !id) return this.create(res, kind, rows, body as Row);
    const row = rows.find((r) => r.uuid === id);
    if (!row)
      return send(
        res,
        404,
        errorBody(`${kind.slice(0, -1).toUpperCase()}_NOT_FOUND`, 'NotFound', `no ${id}`),
      );
    if (method === 'GET') return send(res, 200, row);
    if (method === 'POST' && sub === 'actions' && action === 'enable') row.state = 'Enabled';
    return this.accept(res, this.newJob(`${kind}.${action ?? sub ?? method.toLowerCase()}`, row, true));
  }

  private login(res: ServerResponse, body: Row) {
    if (body?.account !== 'admin' || body.password !== PASSWORD) {
      return send(
        res,
        401,
        errorBody('BAD_CREDENTIALS', 'Unauthenticated', 'wrong account, user or password'),
      );
    }
    const token = randomUUID();
    this.tokens.add(token);
    send(res, 200, {
      token,
      expiresAt: '2099-01-01T00:00:00.000Z',
      accountUuid: ACCOUNT,
      userUuid: randomUUID(),
    });
  }

  private list(res: ServerResponse, rows: Row[], params: URLSearchParams): void {
    // Only `field=value` and `field?=a,b` conditions: enough for name resolution, the CLI's
    // batched name lookups for display, and filters in the tests.
    let items = rows;
    for (const q of params.getAll('q')) {
      const eq = q.indexOf('=');
      const oneOf = q.charAt(eq - 1) === '?';
      const field = q.slice(0, oneOf ? eq - 1 : eq);
      const values = oneOf ? q.slice(eq + 1).split(',') : [q.slice(eq + 1)];
      items = items.filter((r) => values.includes(String(r[field])));
    }
    const limit = Number(params.get('limit') ?? 100);
    const offset = Number(params.get('offset') ?? 0);
    const page: Row = { items: items.slice(offset, offset + limit), limit, offset };
    if (params.get('count') === 'true') page.total = items.length;
    send(res, 200, page);
  }

  private create(res: ServerResponse, kind: string, rows: Row[], body: Row) {
    if (body.managementIp === 'not-an-ip') {
      return send(res, 400, {
        error: {
          code: 'INVALID_REQUEST',
          reason: 'Invalid',
          message: 'the request has 1 invalid field',
          details: { fields: [{ field: 'managementIp', problem: 'must be an IPv4 address' }] },
        },
      });
    }
    const row: Row = {
      uuid: randomUUID(),
      ...body,
      state: 'Enabled',
      status: 'Connected',
      cpuTotal: 32,
      cpuUsed: 0,
    };
    const fails = body.name === 'boom';
    if (!fails) rows.push(row);
    this.accept(res, this.newJob(`${kind.slice(0, -1)}.create`, row, !fails));
  }

  private newJob(kind: string, row: Row, succeeds: boolean): FakeJob {
    const uuid = randomUUID();
    const base: Row = { uuid, kind, resourceKind: 'hosts', resourceUuid: row.uuid, accountUuid: ACCOUNT };
    const job = { ...base, state: 'Pending', progress: 0, progressMessage: null, result: null, error: null };
    const end: Row = succeeds
      ? { ...base, state: 'Succeeded', progress: 100, progressMessage: 'done', result: row, error: null }
      : {
          ...base,
          state: 'Failed',
          progress: 50,
          progressMessage: 'connecting',
          result: null,
          error: {
            code: 'HOST_CONNECT_FAILED',
            reason: 'Unavailable',
            message: 'cannot connect to the host',
            details: {},
            cause: { code: 'AGENT_UNREACHABLE', message: 'connect ECONNREFUSED 10.0.0.99:7070' },
          },
        };
    const fake = {
      job,
      script: [{ ...base, state: 'Running', progress: 50, progressMessage: 'connecting' }, end],
      polls: 0,
    };
    this.jobs.set(uuid, fake);
    return fake;
  }

  private accept(res: ServerResponse, fake: FakeJob): void {
    res.setHeader('location', `/v1/jobs/${String(fake.job.uuid)}`);
    send(res, 202, fake.job);
  }

  private pollJob(res: ServerResponse, uuid: string) {
    const fake = this.jobs.get(uuid);
    if (!fake) return send(res, 404, errorBody('JOB_NOT_FOUND', 'NotFound', `no job ${uuid}`));
    const view = fake.script[Math.min(fake.polls, fake.script.length - 1)];
    fake.polls++;
    send(res, 200, view);
  }
}

function errorBody(code: string, reason: string, message: string): Row {
  return { error: { code, reason, message, details: {} } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
