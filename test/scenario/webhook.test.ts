/**
 * Webhooks through the API against a real local HTTP receiver: bad input refused naming the
 * field; the secret write-only (a generated one shown once); deliveries signed so the receiver
 * verifies them; a failing receiver retried with exponential backoff until it answers or the
 * attempts run out; a tenant's webhook hears only its own account (the admin's hears all); the
 * outbox made in the event's transaction (a rolled-back event has no delivery; a claim left by
 * a dead node lapses and the row is sent); the delivery log paged.
 * The node's own loop is slowed down (1 h): each test runs the pass itself, with a clock it moves.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import type { WebhookService } from '../../src/resources/operations/webhook/service.js';
import { verifySignature } from '../../src/resources/operations/webhook/signature.js';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { type Receiver, startReceiver } from '../support/webhook-receiver.js';
import { refused, succeed, tenant } from './router-fixtures.js';

let t: TestNode;
let rx: Receiver;
let alice: { api: Api; uuid: string };
let bob: { api: Api; uuid: string };

const hooks = () =>
  t.node.kindServices.find((s) => s.contract.kind === 'webhooks') as unknown as WebhookService;
const SECRET = 'a-shared-secret-of-32-characters';

/** An event of `accountUuid`, written the way every part of Nimbus writes them. */
async function emit(accountUuid: string, type: string, data: Record<string, unknown> = {}) {
  await t.node.services.events.inTransaction(t.db.db, async (_tx, batch) => {
    batch.add({ type, resourceKind: 'leases', resourceUuid: newId(), accountUuid, data });
  });
}

const deliveriesOf = (webhook: string) =>
  t.db.db.selectFrom('webhookDeliveries').selectAll().where('webhookUuid', '=', webhook).execute();

async function webhook(api: Api, path: string, body: Record<string, unknown> = {}): Promise<string> {
  const job = await succeed(api, 'POST', '/v1/webhooks', {
    name: `hook${path.replace(/\//g, '-')}`,
    url: rx.url(path),
    eventTypes: ['lease.*'],
    secret: SECRET,
    ...body,
  });
  return job.resourceUuid;
}

before(async () => {
  t = await startTestNode({
    settings: {
      webhookDeliveryIntervalSeconds: 3600,
      webhookRetryBaseSeconds: 10,
      webhookRetryMaxSeconds: 60,
    },
  });
  rx = await startReceiver();
  alice = await tenant(t, 'alice');
  bob = await tenant(t, 'bob');
});

after(async () => {
  await t?.stop();
  await rx?.close();
});

describe('webhooks', () => {
  test('bad input is refused naming each field, and makes nothing', async () => {
    const err = await refused(
      alice.api,
      'POST',
      '/v1/webhooks',
      { name: 'bad', url: 'ftp://example.com/x', eventTypes: ['lease.expiring', 'lease.nope', 'nope.*'] },
      400,
    );
    const fields = (err.details!.fields as Array<{ field: string; problem: string }>)
      .map((f) => f.field)
      .sort();
    assert.deepEqual(fields, ['eventTypes', 'eventTypes', 'url'], JSON.stringify(err));
    assert.match(err.message, /lease\.nope/);
    const notUrl = await refused(
      alice.api,
      'POST',
      '/v1/webhooks',
      { name: 'bad', url: 'not a url at all', eventTypes: ['*'] },
      400,
    );
    assert.match(notUrl.message, /^url:/);
    const short = await refused(
      alice.api,
      'POST',
      '/v1/webhooks',
      { name: 'bad', url: rx.url('/x'), eventTypes: ['*'], secret: 'short' },
      400,
    );
    assert.match(JSON.stringify(short), /secret/);
    const list = await alice.api.get('/v1/webhooks');
    assert.equal(list.body.items.length, 0);
  });

  test('the secret is write-only: a generated one is shown once, in the create’s answer, and nowhere after', async () => {
    const res = await alice.api.call('POST', '/v1/webhooks?wait=true', {
      name: 'generated',
      url: rx.url('/generated'),
      eventTypes: ['lease.expiring'],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const secret = res.body.secrets?.secret as string;
    assert.ok(secret && secret.length >= 32, 'a generated secret in the answer');
    const uuid = res.body.resourceUuid;
    const reads = [
      await alice.api.get(`/v1/webhooks/${uuid}`),
      await alice.api.get('/v1/webhooks'),
      await alice.api.get(`/v1/jobs/${res.body.uuid}`),
      await alice.api.get(`/v1/events?q=resourceUuid=${uuid}`),
    ];
    for (const r of reads) {
      assert.equal(r.status, 200);
      assert.ok(!JSON.stringify(r.body).includes(secret), `the secret leaked: ${JSON.stringify(r.body)}`);
    }
    assert.deepEqual(reads[0]!.body.eventTypes, ['lease.expiring']);
    assert.equal(reads[0]!.body.secret, undefined);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${uuid}`);
  });

  test('a delivery is signed: the receiver verifies HMAC-SHA256 of "<t>.<body>" with the shared secret', async () => {
    const hook = await webhook(alice.api, '/signed');
    await emit(alice.uuid, 'lease.expiring', { expiresAt: '2026-12-08T00:00:00Z' });
    const pass = await hooks().deliver();
    assert.equal(pass.succeeded, 1, JSON.stringify(pass));
    const [got] = rx.received('/signed');
    assert.ok(got);
    assert.equal(verifySignature(SECRET, got.headers['nimbus-signature'] as string, got.body), true);
    assert.equal(
      verifySignature('not-the-secret-at-all', got.headers['nimbus-signature'] as string, got.body),
      false,
    );
    const event = JSON.parse(got.body);
    assert.equal(event.type, 'lease.expiring');
    assert.equal(event.accountUuid, alice.uuid);
    assert.deepEqual(event.data, { expiresAt: '2026-12-08T00:00:00Z' });
    assert.equal(got.headers['nimbus-event-type'], 'lease.expiring');
    const [row] = await deliveriesOf(hook);
    assert.equal(got.headers['nimbus-delivery'], row!.uuid);
    assert.equal(row!.state, 'Succeeded');
    assert.equal(row!.attempts, 1);
    assert.equal(row!.lastStatus, 200);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${hook}`);
  });

  test('a receiver answering 500 is retried after 10 s, 20 s (exponential backoff) and then takes it; another gives up at maxAttempts', async () => {
    rx.plan('/flaky', [500, 500, 200]);
    rx.plan('/down', [500]);
    const flaky = await webhook(alice.api, '/flaky', { maxAttempts: 5 });
    const down = await webhook(alice.api, '/down', { maxAttempts: 2 });
    await emit(alice.uuid, 'lease.reclaimed');
    const t0 = new Date(Date.now() + 1000);
    const at = (s: number) => new Date(t0.getTime() + s * 1000);

    let pass = await hooks().deliver(t0);
    assert.deepEqual(pass, { claimed: 2, succeeded: 0, retrying: 2, failed: 0 });
    let [f] = await deliveriesOf(flaky);
    assert.equal(f!.state, 'Pending');
    assert.equal(f!.lastStatus, 500);
    assert.match(f!.lastError!, /HTTP 500: receiver says no/);
    assert.equal(new Date(f!.nextAttemptAt).getTime(), at(10).getTime(), 'first retry after the base, 10 s');

    pass = await hooks().deliver(at(9));
    assert.equal(pass.claimed, 0, 'nothing is due before its time');

    pass = await hooks().deliver(at(10));
    assert.deepEqual(pass, { claimed: 2, succeeded: 0, retrying: 1, failed: 1 });
    [f] = await deliveriesOf(flaky);
    assert.equal(new Date(f!.nextAttemptAt).getTime(), at(30).getTime(), 'second retry after twice the base');
    const [d] = await deliveriesOf(down);
    assert.equal(d!.state, 'Failed', 'given up at its maxAttempts (2)');
    assert.equal(d!.attempts, 2);

    pass = await hooks().deliver(at(30));
    assert.deepEqual(pass, { claimed: 1, succeeded: 1, retrying: 0, failed: 0 });
    [f] = await deliveriesOf(flaky);
    assert.equal(f!.state, 'Succeeded');
    assert.equal(f!.attempts, 3);
    assert.equal(rx.received('/flaky').length, 3);
    assert.equal(rx.received('/down').length, 2);
    // every attempt is signed afresh and names its number
    assert.deepEqual(
      rx.received('/flaky').map((r) => r.headers['nimbus-attempt']),
      ['1', '2', '3'],
    );
    for (const r of rx.received('/flaky'))
      assert.equal(verifySignature(SECRET, r.headers['nimbus-signature'] as string, r.body), true);

    // the log, as the tenant reads it: filtered and paged
    const failed = await alice.api.get(`/v1/webhook-deliveries?q=webhookUuid=${down}&q=state=Failed`);
    assert.equal(failed.status, 200);
    assert.equal(failed.body.items.length, 1);
    assert.equal(failed.body.items[0].attempts, 2);
    assert.equal(failed.body.items[0].lastStatus, 500);
    const page = await alice.api.get('/v1/webhook-deliveries?limit=1&count=true');
    assert.equal(page.body.items.length, 1);
    assert.ok(page.body.total >= 2);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${flaky}`);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${down}`);
  });

  test('a tenant’s webhook hears only its own account’s events; the admin’s hears every account’s', async () => {
    const mine = await webhook(alice.api, '/alice');
    const admins = await webhook(t.admin, '/admin', { eventTypes: ['lease.stopped'] });
    await emit(bob.uuid, 'lease.stopped', { who: 'bob' });
    await emit(alice.uuid, 'lease.stopped', { who: 'alice' });
    await emit(alice.uuid, 'vm.state.changed', { who: 'not wanted' });
    await hooks().deliver();
    const toAlice = rx.received('/alice').map((r) => JSON.parse(r.body).data.who);
    assert.deepEqual(toAlice, ['alice']);
    const toAdmin = rx
      .received('/admin')
      .map((r) => JSON.parse(r.body).data.who)
      .sort();
    assert.deepEqual(toAdmin, ['alice', 'bob']);
    // and bob sees neither alice's webhook nor its deliveries
    assert.equal((await bob.api.get(`/v1/webhooks/${mine}`)).status, 404);
    assert.equal((await bob.api.get(`/v1/webhook-deliveries?q=webhookUuid=${mine}`)).body.items.length, 0);
    assert.equal((await bob.api.patch(`/v1/webhooks/${mine}`, { url: rx.url('/bob') })).status, 404);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${mine}`);
    await succeed(t.admin, 'DELETE', `/v1/webhooks/${admins}`);
  });

  test('the outbox is the event’s transaction: a rolled-back event has no delivery; a dead node’s claim lapses and the row is sent', async () => {
    const hook = await webhook(alice.api, '/outbox');
    await assert.rejects(
      t.node.services.events.inTransaction(t.db.db, async (_tx, batch) => {
        batch.add({
          type: 'lease.expiring',
          resourceKind: 'leases',
          resourceUuid: newId(),
          accountUuid: alice.uuid,
        });
        throw new Error('the change fails');
      }),
    );
    // the events are written at the end of the transaction: make one commit, then roll one back after its insert
    await assert.rejects(
      t.db.db.transaction().execute(async (tx) => {
        await t.node.services.events.write(tx, [
          { type: 'lease.expiring', resourceKind: 'leases', resourceUuid: newId(), accountUuid: alice.uuid },
        ]);
        assert.equal(
          (await tx.selectFrom('webhookDeliveries').select('uuid').where('webhookUuid', '=', hook).execute())
            .length,
          1,
        );
        throw new Error('rolled back after the insert');
      }),
    );
    assert.equal((await deliveriesOf(hook)).length, 0, 'no delivery for an event that never committed');

    await emit(alice.uuid, 'lease.expiring', { n: 1 });
    // a node claimed it and died mid-send: its claim lapses, then another pass sends it
    await t.db.db
      .updateTable('webhookDeliveries')
      .set({ claimedBy: newId(), claimedUntil: new Date(Date.now() + 60_000), attempts: 1 })
      .where('webhookUuid', '=', hook)
      .execute();
    assert.equal((await hooks().deliver()).claimed, 0, 'a live claim is left alone');
    const pass = await hooks().deliver(new Date(Date.now() + 61_000));
    assert.equal(pass.succeeded, 1);
    const [row] = await deliveriesOf(hook);
    assert.equal(row!.state, 'Succeeded');
    assert.equal(row!.attempts, 2, 'the lost attempt counts');
    assert.equal(rx.received('/outbox').length, 1);
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${hook}`);
  });

  test('passes running at once on two nodes send each delivery once; a delivery whose event is gone is given up', async () => {
    const hook = await webhook(alice.api, '/once');
    for (let i = 0; i < 30; i++) await emit(alice.uuid, 'lease.renewed', { i });
    // a second management node on the same database, its loop slowed down as this one's
    const second = await startTestNode({
      database: t.db,
      settings: { webhookDeliveryIntervalSeconds: 3600 },
    });
    const theirs = second.node.kindServices.find(
      (s) => s.contract.kind === 'webhooks',
    ) as unknown as WebhookService;
    const passes = await Promise.all([
      hooks().deliver(),
      theirs.deliver(),
      hooks().deliver(),
      theirs.deliver(),
    ]);
    await second.stop();
    assert.equal(
      passes.reduce((n, p) => n + p.claimed, 0),
      30,
      JSON.stringify(passes),
    );
    const got = rx.received('/once').map((r) => JSON.parse(r.body).data.i as number);
    assert.equal(got.length, 30);
    assert.equal(new Set(got).size, 30, 'no event sent twice');
    const rows = await deliveriesOf(hook);
    assert.ok(rows.every((r) => r.state === 'Succeeded' && r.attempts === 1));

    await emit(alice.uuid, 'lease.renewed', { i: 'gone' });
    const pending = (await deliveriesOf(hook)).find((r) => r.state === 'Pending')!;
    await t.db.db.deleteFrom('events').where('id', '=', pending.eventId).execute();
    await hooks().deliver();
    const [row] = (await deliveriesOf(hook)).filter((r) => r.uuid === pending.uuid);
    assert.equal(row!.state, 'Failed');
    assert.equal(row!.lastError, 'the event is no longer stored');
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${hook}`);
  });

  test('a disabled webhook gets nothing sent until enabled again; deleting it removes its log', async () => {
    const hook = await webhook(alice.api, '/paused');
    await succeed(alice.api, 'POST', `/v1/webhooks/${hook}/actions/disable`, {});
    await emit(alice.uuid, 'lease.renewed');
    assert.equal((await deliveriesOf(hook)).length, 0, 'a disabled webhook collects nothing');
    await succeed(alice.api, 'POST', `/v1/webhooks/${hook}/actions/enable`, {});
    await emit(alice.uuid, 'lease.renewed');
    await hooks().deliver();
    assert.equal(rx.received('/paused').length, 1);
    const changed = await succeed(alice.api, 'PATCH', `/v1/webhooks/${hook}`, {
      eventTypes: ['lease.released'],
      secret: 'rotated-secret-rotated-secret',
    });
    assert.deepEqual(changed.result.eventTypes, ['lease.released']);
    assert.ok(!JSON.stringify(changed).includes('rotated-secret'), 'the new secret is in no answer');
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${hook}`);
    assert.equal((await deliveriesOf(hook)).length, 0);
  });
});

/**
 * The webhook chains' rollback table: create and update do their one step at admission (a fault
 * there is never checked: nothing runs after it); a fault at any other step fails the job and
 * leaves the webhook as it was.
 */
describe('webhook chains: rollback table', () => {
  const ROWS = [
    { kind: 'webhook.create', step: 'record', op: null },
    { kind: 'webhook.update', step: 'record', op: null },
    {
      kind: 'webhook.delete',
      step: 'delete-record',
      op: (u: string): [string, string] => ['DELETE', `/v1/webhooks/${u}`],
    },
    {
      kind: 'webhook.enable',
      step: 'apply',
      op: (u: string) => ['POST', `/v1/webhooks/${u}/actions/enable`],
    },
    {
      kind: 'webhook.disable',
      step: 'apply',
      op: (u: string) => ['POST', `/v1/webhooks/${u}/actions/disable`],
    },
  ] as const;

  test('a row for every registered webhook chain × step', () => {
    assertTableCovers(registeredSteps(t.node, ['webhook.']), ROWS);
  });

  for (const row of ROWS.filter((r) => r.op !== null)) {
    test(`${row.kind}: a failure at ${row.step} fails the job and changes nothing`, async () => {
      const hook = await webhook(alice.api, `/rollback-${row.kind}`);
      if (row.kind === 'webhook.enable')
        await succeed(alice.api, 'POST', `/v1/webhooks/${hook}/actions/disable`, {});
      const before = await t.db.db
        .selectFrom('webhooks')
        .selectAll()
        .where('uuid', '=', hook)
        .executeTakeFirstOrThrow();
      const set = await t.admin.post('/v1/simulator/faults', {
        point: `step:${row.kind}/${row.step}`,
        times: 1,
        error: { code: 'INJECTED' },
      });
      assert.equal(set.status, 201, JSON.stringify(set.body));
      const [method = '', path = ''] = row.op!(hook);
      const job = await alice.api.job(method, path, method === 'POST' ? {} : undefined);
      assert.equal(job.state, 'Failed', JSON.stringify(job));
      assert.equal(job.error.code, 'INJECTED');
      assert.deepEqual(job.steps.done, []);
      const after = await t.db.db
        .selectFrom('webhooks')
        .selectAll()
        .where('uuid', '=', hook)
        .executeTakeFirstOrThrow();
      assert.deepEqual(after, before);
      await succeed(alice.api, 'DELETE', `/v1/webhooks/${hook}`);
    });
  }
});
