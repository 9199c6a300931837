/**
 * Several servers in one profile URL (docs/cli.md "Several servers"): the client moves on to the
 * next server only when the request provably did nothing where it went — refused connection,
 * unknown host, 503 NODE_DRAINING — or when it is a GET; a POST whose connection broke mid-way is
 * not sent again. The server that answered stays the first choice for the next requests.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ConnectionError } from './errors.js';
import { FakeServer, PASSWORD } from './fake-server.js';
import { ApiClient, mayFailOver, splitUrls } from './http.js';

const good = new FakeServer();
let token: string;
/** answers every request with 503 NODE_DRAINING, as a stopping node does */
let draining: Server;
/** accepts the request, then drops the connection without answering (a node killed mid-request) */
let dying: Server;
let drainingUrl: string;
let dyingUrl: string;
/** a port nothing listens on */
let closedUrl: string;
let dyingHits = 0;

const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};

before(async () => {
  await good.start();
  const login = await new ApiClient(good.url, undefined).request('POST', '/v1/auth/login', {
    auth: false,
    body: { account: 'admin', password: PASSWORD },
  });
  token = (login.body as { token: string }).token;
  draining = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
    res.end(
      JSON.stringify({
        error: { code: 'NODE_DRAINING', reason: 'Unavailable', message: 'stopping', retryable: true },
      }),
    );
  });
  drainingUrl = await listen(draining);
  dying = createServer((req) => {
    dyingHits++;
    req.socket.destroy();
  });
  dyingUrl = await listen(dying);
  const spare = createServer();
  closedUrl = await listen(spare);
  await new Promise<void>((r) => spare.close(() => r()));
});
after(async () => {
  await good.stop();
  await new Promise<void>((r) => draining.close(() => r()));
  await new Promise<void>((r) => dying.close(() => r()));
});

test('a comma-separated URL names several servers', () => {
  assert.deepEqual(splitUrls(' http://a:1/ , http://b:2,,'), ['http://a:1', 'http://b:2']);
  assert.equal(new ApiClient('http://a:1/', 't').baseUrl, 'http://a:1');
});

test('a refused connection moves on to the next server, for a POST too, and that server stays first', async () => {
  const client = new ApiClient(`${closedUrl},${good.url}`, token);
  const list = await client.get('/v1/zones');
  assert.equal(list.status, 200);
  assert.equal(client.baseUrl, good.url);
  const before = good.requests.length;
  const created = await client.request('POST', '/v1/zones', { body: { name: 'failover-zone' } });
  assert.equal(created.status, 202);
  assert.equal(good.requests.length, before + 1, 'sent once, straight to the server that answered');
});

test('503 NODE_DRAINING moves on (the node refused before doing anything)', async () => {
  const client = new ApiClient(`${drainingUrl},${good.url}`, token);
  const created = await client.request('POST', '/v1/zones', { body: { name: 'after-drain' } });
  assert.equal(created.status, 202);
  assert.equal(client.baseUrl, good.url);
});

test('a connection broken mid-request: a GET moves on, a POST is not sent again', async () => {
  const reads = new ApiClient(`${dyingUrl},${good.url}`, token);
  assert.equal((await reads.get('/v1/zones')).status, 200);
  const hits = dyingHits;
  const writes = new ApiClient(`${dyingUrl},${good.url}`, token);
  const before = good.requests.length;
  await assert.rejects(
    writes.request('POST', '/v1/zones', { body: { name: 'maybe-twice' } }),
    ConnectionError,
  );
  assert.equal(dyingHits, hits + 1);
  assert.equal(good.requests.length, before, 'the POST that may have been accepted is not repeated');
});

test('every server down: the last error, naming the last server tried', async () => {
  const client = new ApiClient(`${closedUrl},${closedUrl}`, token);
  await assert.rejects(client.get('/v1/zones'), (err: unknown) => {
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.code, 'ECONNREFUSED');
    return true;
  });
  assert.equal(mayFailOver('POST', new ConnectionError('x', 'connection reset', 'ECONNRESET')), false);
  assert.equal(mayFailOver('POST', new ConnectionError('x', 'connection refused', 'ECONNREFUSED')), true);
});
