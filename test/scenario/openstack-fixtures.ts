/**
 * The OpenStack façade's scenario tests talk to it as a client does: plain fetch with
 * X-Auth-Token (a Keystone token is a Nimbus session token, so one from POST /v1/auth/login
 * serves). Answers are not recorded for the native API document check: the façade follows the
 * OpenStack references instead.
 */
import assert from 'node:assert/strict';
import type { Api } from '../support/node.js';

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
