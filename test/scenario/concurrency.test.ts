import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';

describe('concurrency', () => {
  let t: TestNode;
  let cluster: string;
  before(async () => {
    t = await startTestNode();
    ({ cluster } = await buildInfra(t.admin, 0, 'cc'));
  });
  after(() => t.stop());

  test('200 concurrent host creations: every call accepted, no lost or duplicated rows', async () => {
    const N = 200;
    const ip = (i: number) => `10.200.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const responses = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        t.admin.post('/v1/hosts', { name: `cc-${i}`, clusterUuid: cluster, managementIp: ip(i) }),
      ),
    );
    for (const r of responses) assert.equal(r.status, 202, JSON.stringify(r.body));
    const uuids = responses.map((r) => r.body.uuid as string);
    const finished = await Promise.all(uuids.map((u) => t.admin.get(`/v1/jobs/${u}?wait=true`)));
    assert.ok(
      finished.every((f) => f.body.state === 'Succeeded'),
      'every job succeeded',
    );
    const rows = await t.db.db
      .selectFrom('hosts')
      .select(['uuid', 'managementIp', 'status', 'cpuTotal'])
      .where('clusterUuid', '=', cluster)
      .execute();
    assert.equal(rows.length, N, 'one row per request');
    assert.equal(new Set(rows.map((r) => r.managementIp)).size, N, 'no duplicate addresses');
    assert.ok(
      rows.every((r) => r.status === 'Connected' && r.cpuTotal > 0),
      'every host connected with its capacity read',
    );
    const states = await t.db.db
      .selectFrom('jobs')
      .select(['state', sql<number>`count(*)::int`.as('n')])
      .where('uuid', 'in', uuids)
      .groupBy('state')
      .execute();
    assert.deepEqual(states, [{ state: 'Succeeded', n: N }]);
    const events = await t.db.db
      .selectFrom('events')
      .select(sql<number>`count(distinct resource_uuid)::int`.as('n'))
      .where('type', '=', 'host.created')
      .executeTakeFirstOrThrow();
    assert.equal(events.n, N, 'one host.created event per host');
  });

  test('200 concurrent creations racing for 20 addresses: exactly 20 hosts, the rest refused with HOST_ADDRESS_IN_USE', async () => {
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        t.admin.post('/v1/hosts', {
          name: `race-${i}`,
          clusterUuid: cluster,
          managementIp: `10.201.0.${(i % 20) + 1}`,
        }),
      ),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 409);
    assert.equal(accepted.length, 20);
    assert.equal(refused.length, 180);
    for (const r of refused) assert.equal(r.body.error.code, 'HOST_ADDRESS_IN_USE');
    const rows = await t.db.db
      .selectFrom('hosts')
      .select('managementIp')
      .where('managementIp', 'like', '10.201.0.%')
      .execute();
    assert.equal(rows.length, 20);
  });

  test('operations on one resource run one at a time, in order', async () => {
    const zone = (await t.admin.get('/v1/zones?q=name=cc-zone')).body.items[0].uuid as string;
    const names = Array.from({ length: 30 }, (_, i) => `cc-zone-v${i}`);
    const submitted = [];
    for (const name of names) submitted.push(await t.admin.patch(`/v1/zones/${zone}`, { name }));
    await Promise.all(
      submitted.map((s) => t.admin.post(`/v1/jobs/${s.body.uuid}/actions/cancel`).catch(() => null)),
    );
    // whatever was cancelled, the surviving updates applied in submission order: the last one wins
    for (let i = 0; i < 300; i++) {
      const open = await t.admin.get(
        `/v1/jobs?q=kind=zone.update&q=state?=Pending,Running&count=true&limit=0`,
      );
      if (open.body.total === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = await t.admin.get(`/v1/jobs?q=kind=zone.update&q=state=Succeeded&sort=-finishedAt&limit=1`);
    const last = done.body.items[0];
    const zoneNow = await t.admin.get(`/v1/zones/${zone}`);
    assert.equal(zoneNow.body.name, last.result.name);
    const finished = await t.admin.get(
      `/v1/jobs?q=kind=zone.update&q=state=Succeeded&sort=finishedAt&limit=100`,
    );
    const order = finished.body.items.map((j: { result: { name: string } }) => names.indexOf(j.result.name));
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      'finished in submission order',
    );
  });
});
