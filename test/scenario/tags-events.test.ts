import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';

describe('tags', () => {
  let t: TestNode;
  let infra: { zone: string; cluster: string; hosts: string[] };
  before(async () => {
    t = await startTestNode();
    infra = await buildInfra(t.admin, 3, 'tg');
  });
  after(() => t.stop());

  test('set, replace, query (top level and nested) and remove tags', async () => {
    const [h0, h1, h2] = infra.hosts as [string, string, string];
    assert.equal(
      (await t.admin.job('POST', `/v1/hosts/${h0}/tags`, { key: 'env', value: 'prod' })).state,
      'Succeeded',
    );
    assert.equal(
      (await t.admin.job('POST', `/v1/hosts/${h1}/tags`, { key: 'env', value: 'dev' })).state,
      'Succeeded',
    );
    assert.equal((await t.admin.job('POST', `/v1/hosts/${h2}/tags`, { key: 'gpu' })).state, 'Succeeded');
    assert.equal(
      (await t.admin.job('POST', `/v1/clusters/${infra.cluster}/tags`, { key: 'tier', value: 'gold' })).state,
      'Succeeded',
    );

    const names = async (q: string) =>
      (await t.admin.get(`/v1/hosts?${q}&sort=name`)).body.items.map((h: { uuid: string }) => h.uuid);
    assert.deepEqual(await names('q=tag=env=prod'), [h0]);
    assert.deepEqual(await names('q=tag=env'), [h0, h1]);
    assert.deepEqual(await names('q=tag=gpu'), [h2]);
    assert.deepEqual(await names('q=tag!=env'), [h2]);
    assert.equal((await names('q=cluster.tag=tier=gold')).length, 3);

    // setting a key again replaces its value
    await t.admin.job('POST', `/v1/hosts/${h1}/tags`, { key: 'env', value: 'prod' });
    assert.deepEqual(await names('q=tag=env=prod'), [h0, h1]);
    const listed = await t.admin.get(`/v1/tags?q=resourceUuid=${h1}`);
    assert.equal(listed.body.items.length, 1);
    assert.equal(listed.body.items[0].value, 'prod');

    assert.equal((await t.admin.job('DELETE', `/v1/hosts/${h1}/tags/env`)).state, 'Succeeded');
    assert.deepEqual(await names('q=tag=env=prod'), [h0]);
  });

  test('bad tag keys are refused; tags on a missing resource are a 404', async () => {
    const bad = await t.admin.post(`/v1/hosts/${infra.hosts[0]}/tags`, { key: 'has space' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.fields[0].field, 'key');
    const missing = await t.admin.post('/v1/hosts/01900000-0000-7000-8000-000000000000/tags', { key: 'x' });
    assert.equal(missing.status, 404);
  });

  test('a tenant cannot tag shared infrastructure', async () => {
    await t.admin.job('POST', '/v1/accounts', { name: 'tagger', password: 'tagger-password' });
    const tenant = await t.anon.login('tagger', 'tagger-password');
    const res = await tenant.post(`/v1/zones/${infra.zone}/tags`, { key: 'mine' });
    assert.equal(res.status, 403);
  });

  test('deleting a resource removes its tags', async () => {
    const extra = await t.admin.job('POST', '/v1/zones', { name: 'doomed' });
    await t.admin.job('POST', `/v1/zones/${extra.resourceUuid}/tags`, { key: 'temp' });
    assert.equal((await t.admin.job('DELETE', `/v1/zones/${extra.resourceUuid}`)).state, 'Succeeded');
    assert.equal(
      (await t.admin.get(`/v1/tags?q=resourceUuid=${extra.resourceUuid}&count=true`)).body.total,
      0,
    );
  });
});

describe('events', () => {
  let t: TestNode;
  before(async () => {
    t = await startTestNode();
  });
  after(() => t.stop());

  /** Reads SSE events until `until` returns true (bounded). */
  async function collect(
    api: Api,
    path: string,
    action: () => Promise<unknown>,
    until: (events: any[]) => boolean,
  ) {
    const controller = new AbortController();
    const res = await fetch(`${api.url}${path}`, {
      headers: { authorization: `Bearer ${api.token}` },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    const events: any[] = [];
    let buffer = '';
    const deadline = Date.now() + 20_000;
    await action();
    try {
      while (!until(events) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += new TextDecoder().decode(value);
        let idx = buffer.indexOf('\n\n');
        while (idx >= 0) {
          const chunk = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const data = chunk.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)));
          idx = buffer.indexOf('\n\n');
        }
      }
    } finally {
      controller.abort();
    }
    return events;
  }

  test('the stream carries resource and job state changes as they commit', async () => {
    let zoneJob: any;
    const events = await collect(
      t.admin,
      '/v1/events/stream',
      async () => {
        zoneJob = (await t.admin.post('/v1/zones', { name: 'streamed' })).body;
      },
      (evs) => evs.some((e) => e.type === 'job.state.changed' && e.data.state === 'Succeeded'),
    );
    const types = events.map((e) => e.type);
    assert.ok(types.includes('zone.created'), types.join(','));
    assert.ok(
      events.some(
        (e) =>
          e.type === 'job.state.changed' && e.resourceUuid === zoneJob.uuid && e.data.state === 'Succeeded',
      ),
    );
  });

  test('?after= replays stored events, and the list API pages through them', async () => {
    const zoneEvents = (await t.admin.get('/v1/events?q=type=zone.created&sort=id')).body.items;
    assert.ok(zoneEvents.length >= 1);
    const all = await collect(
      t.admin,
      '/v1/events/stream?after=0&type=zone',
      async () => {},
      (evs) => evs.length >= zoneEvents.length,
    );
    assert.deepEqual(
      all.filter((e) => e.type === 'zone.created').map((e) => e.id),
      zoneEvents.map((e: { id: string }) => e.id),
    );
    assert.ok(all.every((e) => e.type.startsWith('zone.')));
    const firstId = zoneEvents[0].id;
    await t.admin.job('POST', '/v1/zones', { name: 'after-replay' });
    const later = await collect(
      t.admin,
      `/v1/events/stream?after=${firstId}&type=zone`,
      async () => {},
      (evs) => evs.some((e) => e.data.name === 'after-replay'),
    );
    assert.ok(later.every((e) => BigInt(e.id) > BigInt(firstId)));
    assert.ok(later.some((e) => e.data.name === 'after-replay'));
    const page1 = await t.admin.get('/v1/events?sort=id&limit=2&count=true');
    const page2 = await t.admin.get('/v1/events?sort=id&limit=2&offset=2');
    assert.ok(page1.body.total >= 4);
    assert.notEqual(page1.body.items[1].id, page2.body.items[0].id);
  });

  test("a tenant's stream never shows another account's events", async () => {
    await t.admin.job('POST', '/v1/accounts', { name: 'watcher', password: 'watcher-password' });
    const tenant = await t.anon.login('watcher', 'watcher-password');
    const events = await collect(
      tenant,
      '/v1/events/stream',
      async () => {
        await t.admin.job('POST', '/v1/zones', { name: 'hidden-from-tenant' });
        await tenant.job('POST', '/v1/users', { name: 'bob', password: 'bob-password' });
      },
      (evs) => evs.some((e) => e.type === 'user.created'),
    );
    const me = (await tenant.get('/v1/auth/whoami')).body.accountUuid;
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => e.accountUuid === me));
  });
});
