/**
 * A Nimbus test node ready for OpenStack clients: simulated zone/cluster/hosts, a backup storage
 * (attached to the zone) with a public image, flavors (instance offerings) and a tenant account
 * `demo` (= Keystone project "demo", user "demo") with its password; plus Keystone login and a
 * small X-Auth-Token client over fetch.
 */
import assert from 'node:assert/strict';
import { startTestNode, type TestNode } from '../support/node.js';
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
