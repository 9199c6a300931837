/**
 * Scenario-test harness: a real management node (real HTTP, real PostgreSQL, simulated hosts)
 * in this process, on a fresh database, plus a small authenticated API client.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadSettings, type Settings } from '../../src/kernel/settings.js';
import { type RunningNode, startNode } from '../../src/node.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { DocumentCheck, documentCheckOn, recordAnswer, takeAnswers } from './document-check.js';

export const ADMIN_PASSWORD = 'admin-test-password';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class Api {
  constructor(
    readonly url: string,
    public token?: string,
  ) {}

  async call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    recordAnswer(this.url, { method, path, status: res.status, body: parsed });
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  get<T = any>(path: string) {
    return this.call<T>('GET', path);
  }
  post<T = any>(path: string, body: unknown = {}) {
    return this.call<T>('POST', path, body);
  }
  patch<T = any>(path: string, body: unknown) {
    return this.call<T>('PATCH', path, body);
  }
  delete<T = any>(path: string) {
    return this.call<T>('DELETE', path);
  }

  async login(account: string, password: string, user?: string): Promise<Api> {
    const res = await new Api(this.url).post('/v1/auth/login', {
      account,
      password,
      ...(user ? { user } : {}),
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
    return new Api(this.url, res.body.token);
  }

  /** Submits with ?wait=true and returns the finished job (throws if the HTTP call itself failed). */
  async job(method: string, path: string, body?: unknown): Promise<any> {
    const sep = path.includes('?') ? '&' : '?';
    const res = await this.call(method, `${path}${sep}wait=true`, body);
    if (res.status !== 200 && res.status !== 202)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

export interface TestNode {
  node: RunningNode;
  db: TestDatabase;
  url: string;
  anon: Api;
  admin: Api;
  stop(): Promise<void>;
}

/** Starts a node on a new database; `stop()` stops it and drops the database. */
export async function startTestNode(
  opts: {
    database?: TestDatabase;
    nodeName?: string;
    /** tunables over the defaults (and NIMBUS_SETTINGS) */
    settings?: Partial<Settings>;
    metricsToken?: string;
  } = {},
): Promise<TestNode> {
  const db = opts.database ?? (await createTestDatabase({ max: 5 }));
  const node = await startNode({
    databaseUrl: db.url,
    dataDir: mkdtempSync(join(tmpdir(), 'nimbus-node-')),
    host: '127.0.0.1',
    port: 0,
    adminPassword: ADMIN_PASSWORD,
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    nodeName: opts.nodeName ?? `test-${Math.random().toString(36).slice(2)}`,
    heartbeatMs: 500,
    ...(opts.settings ? { settings: loadSettings(process.env.NIMBUS_SETTINGS, opts.settings) } : {}),
    ...(opts.metricsToken ? { metricsToken: opts.metricsToken } : {}),
  });
  const anon = new Api(node.url);
  const admin = await anon.login('admin', ADMIN_PASSWORD);
  return {
    node,
    db,
    url: node.url,
    anon,
    admin,
    async stop() {
      // every answer this node gave the test client, held to the API document (document-check.ts)
      const doc = documentCheckOn ? (await anon.get('/v1/openapi.json')).body : undefined;
      await node.stop();
      if (!opts.database) await db.drop();
      if (doc) {
        const problems = new DocumentCheck(doc).problems(takeAnswers(node.url));
        if (problems.length > 0)
          throw new Error(`answers that /v1/openapi.json does not document:\n${problems.join('\n')}`);
      }
    },
  };
}

/** zone → cluster → N connected simulated hosts, through the API. */
export async function buildInfra(
  api: Api,
  hosts = 2,
  prefix = 'z',
): Promise<{ zone: string; cluster: string; hosts: string[] }> {
  const zone = await api.job('POST', '/v1/zones', { name: `${prefix}-zone` });
  if (zone.state !== 'Succeeded') throw new Error(JSON.stringify(zone));
  const cluster = await api.job('POST', '/v1/clusters', {
    name: `${prefix}-cluster`,
    zoneUuid: zone.resourceUuid,
    hypervisorType: 'simulator',
  });
  if (cluster.state !== 'Succeeded') throw new Error(JSON.stringify(cluster));
  const made = await Promise.all(
    Array.from({ length: hosts }, (_, i) =>
      api.job('POST', '/v1/hosts', {
        name: `${prefix}-host-${i}`,
        clusterUuid: cluster.resourceUuid,
        managementIp: `10.${prefix.length}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      }),
    ),
  );
  return { zone: zone.resourceUuid, cluster: cluster.resourceUuid, hosts: made.map((h) => h.resourceUuid) };
}

/** The distinct field names of a validation error's `details.fields`, sorted. */
export const fieldsOf = (body: any): string[] =>
  [...new Set((body.error.details.fields as Array<{ field: string }>).map((f) => f.field))].sort();
