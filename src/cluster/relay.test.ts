/**
 * The event relay (docs/cluster.md "Events across nodes"): two relays on one database, as two
 * nodes. What one publishes reaches the other's subscribers as remote events (never back to
 * itself, never relayed again), in order, with an event too large for a NOTIFY payload read
 * from the table by id; and the admission cache of the other "node" drops a row its event names.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { type DbHandle, openDb } from '../db/pool.js';
import { type CloudEvent, EventBus } from '../engine/events.js';
import { newId } from '../kernel/ids.js';
import { cachedRow, forgetOnEvents } from '../resources/admission-cache.js';
import { EventRelay, packEvents } from './relay.js';

let t: TestDatabase;
let db: DbHandle;
const buses = [new EventBus(), new EventBus()];
const relays: EventRelay[] = [];
const log = pino({ level: 'silent' });

before(async () => {
  t = await createTestDatabase({ max: 2 });
  db = openDb(t.url, { max: 4, applicationName: 'relay-test' });
  for (const [i, bus] of buses.entries()) {
    const relay = new EventRelay({
      db: db.db,
      connectionString: t.url,
      bus,
      nodeId: `node-${i}`,
      applicationName: `relay-test-${i}`,
      log,
    });
    await relay.start();
    relays.push(relay);
  }
});
after(async () => {
  for (const r of relays) await r.stop();
  await db.close();
  await t.drop();
});

/** Stores events as the engine does (so a large one can be read back by id). */
async function stored(n: number, data: Record<string, unknown> = {}): Promise<CloudEvent[]> {
  return buses[0]!.write(
    db.db,
    Array.from({ length: n }, () => ({
      type: 'test.thing.changed',
      resourceKind: 'things',
      resourceUuid: newId(),
      accountUuid: newId(),
      data,
    })),
  );
}

function collect(bus: EventBus) {
  const seen: Array<{ e: CloudEvent; remote: boolean }> = [];
  const stop = bus.subscribe((e, remote) => seen.push({ e, remote }));
  return { seen, stop };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('payloads stay under the NOTIFY limit; an event too large alone travels as its id', () => {
  const small = Array.from(
    { length: 100 },
    (_, i) => ({ id: String(i), data: { x: 'y'.repeat(200) } }) as unknown as CloudEvent,
  );
  const payloads = packEvents('n', small);
  assert.ok(payloads.length > 1);
  for (const p of payloads) assert.ok(Buffer.byteLength(p) < 8000);
  assert.equal(payloads.flatMap((p) => JSON.parse(p).e).length, 100);
  const big = packEvents('n', [{ id: '7', data: { x: 'z'.repeat(9000) } } as unknown as CloudEvent]);
  assert.deepEqual(JSON.parse(big[0]!), { n: 'n', ids: ['7'] });
});

test('what one node publishes reaches the other as remote events, in order, and not itself again', async () => {
  const other = collect(buses[1]!);
  const self = collect(buses[0]!);
  const events = [...(await stored(50)), ...(await stored(1, { blob: 'b'.repeat(9000) }))];
  buses[0]!.publish(events);
  await until(() => other.seen.length === events.length);
  assert.deepEqual(
    other.seen.map((s) => s.e.uuid),
    events
      .slice(0, 50)
      .map((e) => e.uuid)
      .concat(events[50]!.uuid),
  );
  assert.ok(other.seen.every((s) => s.remote));
  assert.equal((other.seen[50]!.e.data as { blob: string }).blob.length, 9000, 'the large one read by id');
  assert.ok(other.seen[0]!.e.at instanceof Date);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(self.seen.length, events.length, 'the publisher saw each of its events once (locally)');
  assert.ok(self.seen.every((s) => !s.remote));
  other.stop();
  self.stop();
});

test('a change published on one node drops the row from the other node’s admission cache', async () => {
  const stopForgetting = forgetOnEvents(buses[1]!);
  const [event] = await stored(1);
  let loads = 0;
  const load = async () => {
    loads++;
    return { state: 'Ready' };
  };
  await cachedRow(event!.resourceUuid, load, () => true);
  await cachedRow(event!.resourceUuid, load, () => true);
  assert.equal(loads, 1, 'cached');
  const seen = collect(buses[1]!);
  buses[0]!.publish([event!]);
  await until(() => seen.seen.length === 1);
  await cachedRow(event!.resourceUuid, load, () => true);
  assert.equal(loads, 2, 'read again after the other node’s change');
  seen.stop();
  stopForgetting();
});
