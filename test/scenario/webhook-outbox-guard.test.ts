/**
 * The webhook outbox trigger exists only while some webhook is Enabled (migration 0020): with
 * none, an event insert runs no trigger; the first webhook made (or enabled) brings it back and
 * its events are delivered; the last one disabled or deleted takes it away. Webhook changes
 * racing each other (the last Enabled one deleted while another is made) never leave an Enabled
 * webhook without the trigger.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { newId } from '../../src/kernel/ids.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { succeed, tenant } from './router-fixtures.js';

let t: TestNode;
let alice: { api: Api; uuid: string };

before(async () => {
  // the delivery loop is slowed down: the rows are checked, nothing needs sending
  t = await startTestNode({ settings: { webhookDeliveryIntervalSeconds: 3600 } });
  alice = await tenant(t, 'alice');
});

after(async () => {
  await t?.stop();
});

async function hasTrigger(): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_trigger
    where tgrelid = 'events'::regclass and tgname = 'events_webhook_outbox'`.execute(t.db.db);
  return rows[0]?.n === 1;
}

/** An event of alice's, written the way every part of Nimbus writes them. */
async function emit(type = 'lease.renewed'): Promise<void> {
  await t.node.services.events.inTransaction(t.db.db, async (_tx, batch) => {
    batch.add({ type, resourceKind: 'leases', resourceUuid: newId(), accountUuid: alice.uuid });
  });
}

const deliveries = async () =>
  Number(
    (
      await t.db.db
        .selectFrom('webhookDeliveries')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

let n = 0;
async function webhook(): Promise<string> {
  n++;
  const job = await succeed(alice.api, 'POST', '/v1/webhooks', {
    name: `guard-${n}`,
    url: `http://127.0.0.1:9/guard-${n}`,
    eventTypes: ['lease.*'],
    secret: 'a-shared-secret-of-32-characters',
  });
  return job.resourceUuid;
}

describe('the webhook outbox trigger follows the Enabled webhooks', () => {
  test('none without a webhook; made with the first, gone with the last disabled or deleted; events delivered while it is there', async () => {
    assert.equal(await hasTrigger(), false, 'a fresh cloud has no webhook and no trigger');
    await emit();
    assert.equal(await deliveries(), 0);

    const first = await webhook();
    assert.equal(await hasTrigger(), true, 'the first webhook brings the trigger');
    await emit();
    assert.equal(await deliveries(), 1, 'its event is in the outbox');

    await succeed(alice.api, 'POST', `/v1/webhooks/${first}/actions/disable`, {});
    assert.equal(await hasTrigger(), false, 'no webhook Enabled: no trigger');
    await emit();
    assert.equal(await deliveries(), 1, 'a disabled webhook collects nothing');

    await succeed(alice.api, 'POST', `/v1/webhooks/${first}/actions/enable`, {});
    assert.equal(await hasTrigger(), true, 'enabled again: the trigger is back');
    const second = await webhook();
    await emit();
    assert.equal(await deliveries(), 3, 'one delivery per webhook');

    await succeed(alice.api, 'DELETE', `/v1/webhooks/${first}`);
    assert.equal(await hasTrigger(), true, 'one webhook still Enabled');
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${second}`);
    assert.equal(await hasTrigger(), false, 'the last deleted: no trigger');
  });

  test('the last Enabled webhook deleted while another is made: the new one keeps the trigger', async () => {
    let current = await webhook();
    for (let round = 0; round < 6; round++) {
      const [, made] = await Promise.all([
        succeed(alice.api, 'DELETE', `/v1/webhooks/${current}`),
        webhook(),
      ]);
      current = made;
      assert.equal(await hasTrigger(), true, `round ${round}: an Enabled webhook, so the trigger`);
      const before = await deliveries();
      await emit();
      assert.equal(await deliveries(), before + 1, `round ${round}: its event is in the outbox`);
    }
    await succeed(alice.api, 'DELETE', `/v1/webhooks/${current}`);
    assert.equal(await hasTrigger(), false);
  });
  test('the last Enabled webhook deleted while a new one is uncommitted: the delete waits for it, then keeps the trigger', async () => {
    const insert = (tx: typeof t.db.db, uuid: string, name: string) =>
      sql`insert into webhooks (uuid, name, account_uuid, url, event_types, secret)
        values (${uuid}, ${name}, ${alice.uuid}, 'http://127.0.0.1:9/x', '["lease.*"]', 'secret')`.execute(
        tx,
      );
    const old = newId();
    await insert(t.db.db, old, 'race-old');
    assert.equal(await hasTrigger(), true);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let made: () => void = () => {};
    const inserted = new Promise<void>((r) => {
      made = r;
    });
    // one transaction makes a webhook and stays open…
    const maker = t.db.db.transaction().execute(async (tx) => {
      await insert(tx, newId(), 'race-new');
      made();
      await held;
    });
    await inserted;
    // …while another deletes the only committed Enabled one: it must wait for the first
    const deleter = sql`delete from webhooks where uuid = ${old}`.execute(t.db.db);
    for (;;) {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
        where not granted and relation = 'events'::regclass`.execute(t.db.db);
      if ((rows[0]?.n ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    release();
    await maker;
    await deleter;
    assert.equal(await hasTrigger(), true, 'the new webhook is Enabled: the trigger stays');
    await sql`delete from webhooks where name = 'race-new'`.execute(t.db.db);
    assert.equal(await hasTrigger(), false);
  });
});
