/**
 * The management node serves the web console beside the API (src/api/web-console.ts): hashed
 * assets cached for a year, index.html never cached and with its CSP, client routes answered with
 * index.html only for a browser navigation outside the API, and the API's JSON 404 otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('web console: static files at /', () => {
  let t: TestNode;
  let index: string;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { headers });
  before(async () => {
    t = await startTestNode();
  });
  after(() => t.stop());

  test('/ is index.html: no token needed, never cached, with a Content-Security-Policy', async () => {
    const res = await get('/', { accept: HTML });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(res.headers.get('content-security-policy')!, /script-src 'self';/);
    index = await res.text();
    assert.match(index, /<div id="root">/);
  });

  test('assets have hashed names and a year-long immutable cache; a repeat with the ETag is 304', async () => {
    const assets = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), index);
    for (const a of assets) {
      assert.match(a, /-[A-Za-z0-9_-]{8}\.(js|css)$/);
      const res = await get(a, { 'accept-encoding': 'gzip' });
      assert.equal(res.status, 200, a);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(res.headers.get('content-encoding'), 'gzip');
      assert.ok((await res.arrayBuffer()).byteLength > 0);
      const again = await get(a, { 'if-none-match': res.headers.get('etag')! });
      assert.equal(again.status, 304);
    }
  });

  test('a client route is index.html for a browser, the JSON 404 for an API client', async () => {
    for (const path of ['/vms', '/vms/0190d8a0-0000-7000-8000-000000000000', '/login?next=%2Fhosts']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), index);
    }
    const api = await get('/vms', { accept: 'application/json' });
    assert.equal(api.status, 404);
    assert.equal(((await api.json()) as any).error.code, 'ROUTE_NOT_FOUND');
  });

  test('API paths, /metrics and missing assets never fall back to index.html', async () => {
    const unknownApi = await get('/v1/no-such-kind', { accept: HTML });
    assert.equal(unknownApi.status, 401); // /v1 wants a token before anything else
    const withToken = await get('/v1/no-such-kind', {
      accept: HTML,
      authorization: `Bearer ${t.admin.token}`,
    });
    assert.equal(withToken.status, 404);
    assert.equal(((await withToken.json()) as any).error.code, 'ROUTE_NOT_FOUND');
    for (const path of ['/assets/missing-12345678.js', '/favicon.ico', '/../package.json']) {
      const res = await get(path, { accept: HTML });
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as any).error.reason, 'NotFound');
    }
    const metrics = await get('/metrics', { accept: HTML });
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type')!, /^text\/plain/);
  });
});
