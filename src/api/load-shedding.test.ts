/**
 * Load shedding on a real socket: each class has its own limit, a refused request gets 503
 * OVERLOADED with Retry-After before its body is read, exempt paths are never refused, and a slot
 * is given back exactly once however the request ends (answered, or its client gone first).
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { classify, LoadState, registerLoadShedding } from './load-shedding.js';

describe('classify', () => {
  test('exempt paths, long-polls, reads and writes', () => {
    assert.equal(classify('GET', '/v1/health'), 'exempt');
    assert.equal(classify('GET', '/v1/ready?x=1'), 'exempt');
    assert.equal(classify('GET', '/metrics'), 'exempt');
    assert.equal(classify('GET', '/v1/events/stream?after=3'), 'exempt');
    assert.equal(classify('GET', '/v1/jobs/x?wait=true'), 'wait');
    assert.equal(classify('POST', '/v1/vms?a=b&wait=1'), 'wait');
    assert.equal(classify('GET', '/v1/vms?waiting=true'), 'read');
    assert.equal(classify('GET', '/v1/vms?limit=1000'), 'read');
    assert.equal(classify('HEAD', '/v1/vms'), 'read');
    assert.equal(classify('POST', '/v1/vms'), 'write');
    assert.equal(classify('DELETE', '/v1/vms/x'), 'write');
    assert.equal(classify('POST', '/v1/health-check'), 'write');
  });
});

describe('the shedding hook', () => {
  let app: FastifyInstance;
  let base: string;
  const state = new LoadState();
  // handlers wait until released, so the test decides how many are in flight
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  const closeGate = () => {
    gate = new Promise((r) => {
      open = r;
    });
  };
  let bodiesParsed = 0;

  before(async () => {
    app = Fastify();
    registerLoadShedding(
      app,
      { maxInFlightReads: 2, maxInFlightWrites: 1, maxInFlightWaits: 1, overloadRetryAfterSeconds: 3 },
      state,
    );
    const slow = async () => {
      await gate;
      return { ok: true };
    };
    app.get('/v1/things', slow);
    app.get('/v1/health', async () => ({ status: 'ok' }));
    app.post('/v1/things', async (request) => {
      bodiesParsed++;
      await gate;
      return { got: request.body };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(() => app.close());

  const settle = async () => {
    for (let i = 0; i < 50 && state.inFlight.read + state.inFlight.write + state.inFlight.wait > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
  };

  test('beyond a class limit: 503 OVERLOADED with Retry-After, other classes unaffected', async () => {
    closeGate();
    const held = [fetch(`${base}/v1/things`), fetch(`${base}/v1/things`)];
    while (state.inFlight.read < 2) await new Promise((r) => setTimeout(r, 5));
    const refused = await fetch(`${base}/v1/things?limit=1000`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '3');
    const body = (await refused.json()) as { error: Record<string, unknown> };
    assert.equal(body.error.code, 'OVERLOADED');
    assert.equal(body.error.reason, 'Unavailable');
    assert.equal(body.error.retryable, true);
    assert.deepEqual(body.error.details, { class: 'read', limit: 2, retryAfterSeconds: 3 });
    // health is exempt; a write has its own budget
    assert.equal((await fetch(`${base}/v1/health`)).status, 200);
    const write = fetch(`${base}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    while (state.inFlight.write < 1) await new Promise((r) => setTimeout(r, 5));
    open();
    assert.deepEqual(await (await write).json(), { got: { a: 1 } });
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
    await settle();
    assert.deepEqual(state.inFlight, { exempt: 0, wait: 0, read: 0, write: 0 });
    assert.ok(state.refused.read >= 1);
  });

  test('a refused write is answered before its body is read (an unparseable body gets 503, not 400)', async () => {
    closeGate();
    const parsedBefore = bodiesParsed;
    const held = fetch(`${base}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    while (state.inFlight.write < 1) await new Promise((r) => setTimeout(r, 5));
    const refused = await fetch(`${base}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'OVERLOADED');
    open();
    assert.equal((await held).status, 200);
    assert.equal(bodiesParsed, parsedBefore + 1, 'only the admitted write reached its handler');
    await settle();
  });

  test('clients that go away mid-request give their slots back', async () => {
    closeGate();
    const aborted = Array.from({ length: 2 }, () => {
      const req = httpRequest(`${base}/v1/things`);
      req.on('error', () => {});
      req.end();
      return req;
    });
    while (state.inFlight.read < 2) await new Promise((r) => setTimeout(r, 5));
    for (const req of aborted) req.destroy();
    for (let i = 0; i < 100 && state.inFlight.read > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(state.inFlight.read, 0, 'both slots released while the handlers still wait');
    // the freed slots serve new reads
    open();
    assert.equal((await fetch(`${base}/v1/things`)).status, 200);
    await settle();
    assert.deepEqual(state.inFlight, { exempt: 0, wait: 0, read: 0, write: 0 });
  });
});
