/**
 * One error shape for every failure, framework refusals included; 404/409 bodies with details;
 * authorisation before validation (a tenant gets the same 404 for another account's resource
 * whatever it sends); events readable by uuid.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';

function assertShape(body: any, code?: string): void {
  assert.equal(typeof body, 'object', `not JSON: ${String(body)}`);
  const e = body.error;
  assert.equal(typeof e?.code, 'string', JSON.stringify(body));
  assert.equal(typeof e.reason, 'string', JSON.stringify(body));
  assert.equal(typeof e.message, 'string', JSON.stringify(body));
  assert.equal(typeof e.details, 'object', `no details: ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body), ['error']);
  if (code) assert.equal(e.code, code, JSON.stringify(body));
}

/** A raw request line + headers on a socket: what fetch would refuse to send. */
function raw(url: string, text: string): Promise<{ status: number; body: any; head: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      data += c;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), body: body ? JSON.parse(body) : undefined, head });
    });
  });
}

describe('error shape and authorisation order', () => {
  let t: TestNode;
  let a: Api;
  let b: Api;
  let groupOfA: string;
  before(async () => {
    t = await startTestNode();
    for (const name of ['alpha', 'beta']) {
      const job = await t.admin.job('POST', '/v1/accounts', { name, password: `${name}-password` });
      assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    }
    a = await t.anon.login('alpha', 'alpha-password');
    b = await t.anon.login('beta', 'beta-password');
    const sg = await a.job('POST', '/v1/security-groups', { name: 'web' });
    assert.equal(sg.state, 'Succeeded', JSON.stringify(sg));
    groupOfA = sg.resourceUuid;
  });
  after(() => t.stop());

  test('an over-long path parameter is 414 in the one shape', async () => {
    const res = await t.admin.get(`/v1/zones/${'a'.repeat(300)}`);
    assert.equal(res.status, 414);
    assertShape(res.body, 'URI_TOO_LONG');
  });

  test('over-large headers (a long URL) are 431 in the one shape, as JSON', async () => {
    const res = await raw(
      t.url,
      `GET /v1/zones?q=${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 431);
    assert.match(res.head, /content-type: application\/json/i);
    assertShape(res.body, 'HEADERS_TOO_LARGE');
  });

  test('a malformed URL, bad JSON, a wrong media type and an unknown route: the one shape', async () => {
    const badUrl = await t.admin.get('/v1/zones/%E0%A4%A');
    assert.ok(badUrl.status === 400 || badUrl.status === 404, String(badUrl.status));
    assertShape(badUrl.body);
    const badJson = await t.admin.call('POST', '/v1/zones', '{"name":', {});
    assert.equal(badJson.status, 400);
    assertShape(badJson.body, 'INVALID_REQUEST');
    const media = await fetch(`${t.url}/v1/zones`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.admin.token}`, 'content-type': 'application/xml' },
      body: '<name>x</name>',
    });
    assert.equal(media.status, 415);
    assertShape(await media.json(), 'UNSUPPORTED_MEDIA_TYPE');
    const unknown = await t.admin.get('/v1/no-such-kind');
    assert.equal(unknown.status, 404);
    assertShape(unknown.body, 'ROUTE_NOT_FOUND');
    assert.deepEqual(unknown.body.error.details, { method: 'GET', path: '/v1/no-such-kind' });
  });

  test('a 404 names the kind and uuid; a 409 says what conflicts', async () => {
    const missing = newId();
    const res = await t.admin.get(`/v1/zones/${missing}`);
    assert.equal(res.status, 404);
    assertShape(res.body, 'ZONE_NOT_FOUND');
    assert.deepEqual(res.body.error.details, { kind: 'zone', uuid: missing });
    const patch = await t.admin.patch(`/v1/zones/${missing}`, { name: 'x' });
    assert.equal(patch.status, 404);
    assert.equal(patch.body.error.details.uuid, missing);

    const dup = await a.post('/v1/security-groups', { name: 'web' });
    assert.equal(dup.status, 409, JSON.stringify(dup.body));
    assertShape(dup.body);
    assert.equal(dup.body.error.details.field, 'name', JSON.stringify(dup.body));
  });

  test("a tenant gets the same 404 for another account's resource whatever the body", async () => {
    const routes: Array<[string, string, unknown, unknown]> = [
      // method, path, a valid body, an invalid body
      ['PATCH', `/v1/security-groups/${groupOfA}`, { name: 'mine' }, { name: 42, bogus: 'a\u0000' }],
      [
        'POST',
        `/v1/security-groups/${groupOfA}/actions/add-nics`,
        { vmNicUuids: [newId()] },
        { vmNicUuids: 'x' },
      ],
      ['POST', `/v1/security-groups/${groupOfA}/tags`, { key: 'env' }, { key: '', value: 7 }],
      ['DELETE', `/v1/security-groups/${groupOfA}/tags/env`, undefined, undefined],
      ['DELETE', `/v1/security-groups/${groupOfA}`, undefined, undefined],
    ];
    for (const [method, path, good, bad] of routes) {
      const one = await b.call(method, path, good);
      const two = await b.call(method, path, bad);
      assert.equal(one.status, 404, `${method} ${path}: ${JSON.stringify(one.body)}`);
      assert.equal(two.status, 404, `${method} ${path} (invalid body): ${JSON.stringify(two.body)}`);
      assert.deepEqual(two.body, one.body, `${method} ${path}: the body tells nothing`);
      // and the same as for a resource that does not exist at all
      const none = await b.call(method, path.replace(groupOfA, newId()), good);
      assert.equal(none.body.error.code, one.body.error.code);
    }
    // the owner with the invalid body is told what is wrong
    const own = await a.patch(`/v1/security-groups/${groupOfA}`, { name: 42 });
    assert.equal(own.status, 400);
    assert.equal(own.body.error.details.fields[0].field, 'name');
    // admin-only kinds: 403 before the body is looked at
    const zone = await b.patch(`/v1/zones/${newId()}`, { bogus: true });
    assert.equal(zone.status, 403);
    const create = await b.post('/v1/zones', { bogus: true });
    assert.equal(create.status, 403);
    const fault = await b.post('/v1/simulator/faults', { point: 42 });
    assert.equal(fault.status, 403, 'simulator control: admin first, then the body');
  });

  test('GET /v1/events/{uuid} answers an event by uuid, 404 otherwise (was a 500)', async () => {
    const list = await a.get('/v1/events?limit=1');
    assert.equal(list.status, 200);
    const event = list.body.items[0];
    const one = await a.get(`/v1/events/${event.uuid}`);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.uuid, event.uuid);
    assert.equal(one.body.id, event.id);
    const other = await b.get(`/v1/events/${event.uuid}`);
    assert.equal(other.status, 404, "another account's event");
    const none = await a.get(`/v1/events/${newId()}`);
    assert.equal(none.status, 404);
    assertShape(none.body, 'EVENT_NOT_FOUND');
    const bad = await a.get('/v1/events/123');
    assert.equal(bad.status, 400);
  });
});
