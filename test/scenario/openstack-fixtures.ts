/**
 * A Nimbus test node ready for OpenStack clients: simulated zone/cluster/hosts, a backup storage
 * (attached to the zone) with a public image, flavors (instance offerings) and a tenant account
 * `demo` (= Keystone project "demo", user "demo") with its password; plus Keystone login and a
 * small X-Auth-Token client over fetch.
 */
import assert from 'node:assert/strict';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, type VmEnv } from './vm-env.js';

export const TENANT = { project: 'demo', user: 'demo', password: 'demo-password' };

export interface OpenStackNode {
  t: TestNode;
  env: VmEnv;
  /** http://127.0.0.1:port/identity/v3 */
  authUrl: string;
}

export async function startOpenStackNode(prefix = 'os'): Promise<OpenStackNode> {
  const t = await startTestNode();
  const env = await buildVmEnv(t, { hosts: 2, prefix });
  const acct = await t.admin.job('POST', '/v1/accounts', { name: TENANT.project, password: TENANT.password });
  assert.equal(acct.state, 'Succeeded', JSON.stringify(acct));
  return { t, env, authUrl: `${t.url}/identity/v3` };
}

export interface OsResponse {
  status: number;
  body: any;
  headers: Headers;
}

/** one request with X-Auth-Token (JSON in, JSON or nothing out) */
export async function osCall(
  url: string,
  method: string,
  token: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<OsResponse> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { 'x-auth-token': token } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers };
}

/** a project-scoped token for user/project (Keystone password method) */
export async function keystoneToken(
  base: string,
  who: { user: string; project: string; password: string } = TENANT,
): Promise<{ token: string; body: any }> {
  const res = await osCall(`${base}/identity/v3/auth/tokens`, 'POST', undefined, {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: who.user, domain: { name: 'Default' }, password: who.password } },
      },
      scope: { project: { name: who.project, domain: { name: 'Default' } } },
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { token: res.headers.get('x-subject-token')!, body: res.body };
}

/** polls `read` until `done` holds (each read is a real request; no timing decides the result) */
export async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, tries = 600): Promise<T> {
  let v = await read();
  for (let i = 0; i < tries && !done(v); i++) {
    await new Promise((r) => setTimeout(r, 100));
    v = await read();
  }
  return v;
}

/**
 * The OpenStack façade's scenario tests talk to it as a client does: plain fetch with
 * X-Auth-Token (a Keystone token is a Nimbus session token, so one from POST /v1/auth/login
 * serves). Answers are not recorded for the native API document check: the façade follows the
 * OpenStack references instead.
 */
export interface OsAnswer {
  status: number;
  body: any;
  headers: Headers;
}

export class OsClient {
  constructor(
    readonly url: string,
    readonly token: string | undefined,
  ) {}

  static of(api: Api): OsClient {
    return new OsClient(api.url, api.token);
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<OsAnswer> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.token ? { 'x-auth-token': this.token } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** the answer, asserting its status */
  async expect(status: number, method: string, path: string, body?: unknown): Promise<OsAnswer> {
    const a = await this.call(method, path, body);
    assert.equal(a.status, status, `${method} ${path} → ${a.status}: ${JSON.stringify(a.body)}`);
    return a;
  }

  get(path: string) {
    return this.expect(200, 'GET', path);
  }
}

/** every item of a paged list, following its `next` links; asserts each page's size */
export async function allPages(c: OsClient, first: string, key: string, limit: number) {
  const seen: { id: string }[] = [];
  const pages: OsAnswer[] = [];
  let path: string | undefined = first;
  while (path) {
    const page = await c.get(path);
    pages.push(page);
    const items = page.body[key] as { id: string }[];
    assert.ok(items.length <= limit, `a page of ${items.length} > limit ${limit}`);
    seen.push(...items);
    // Neutron always sends the links; Cinder only a next one, when there is a next page
    const next = ((page.body[`${key}_links`] ?? []) as { rel: string; href: string }[]).find(
      (l) => l.rel === 'next',
    );
    path = next ? new URL(next.href).pathname + new URL(next.href).search : undefined;
    assert.ok(pages.length < 100, 'paging never ends');
  }
  return { seen, pages };
}
