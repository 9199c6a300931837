/**
 * Queue slots (docs/cluster.md "Queue slots"): claimJob takes a free slot of the job's queue in
 * the statement that makes it Running, so however many nodes claim at once, a queue never runs
 * more than its parallelism; a full queue answers QUEUE_BUSY until a job of it ends; a Running
 * job recovered from a dead node keeps its slot.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { type DbHandle, openDb } from '../db/pool.js';
import { newId } from '../kernel/ids.js';
import { claimJob, finishJob, QUEUE_BUSY } from './job-statements.js';
import { insertJob, type JobRow } from './jobs.js';

let t: TestDatabase;
let db: DbHandle;
const nodes = [newId(), newId(), newId()];

before(async () => {
  t = await createTestDatabase({ max: 2 });
  db = openDb(t.url, { max: 12, applicationName: 'queue-slots-test' });
});
after(async () => {
  await db.close();
  await t.drop();
});

const job = (queueKey: string, node: string) =>
  insertJob(db.db, { kind: 'test.op', accountUuid: newId(), queueKey }, node);

test('ten claims at once on a queue of parallelism 1, from three nodes: exactly one runs', async () => {
  const key = `vm:${newId()}`;
  const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => job(key, nodes[i % 3]!)));
  const answers = await Promise.all(
    jobs.map((j) => claimJob(db.db, j.ownerNode!, j.uuid, { key, parallelism: 1 })),
  );
  const won = answers.filter((a) => a !== QUEUE_BUSY && a !== undefined);
  assert.equal(won.length, 1);
  assert.equal(answers.filter((a) => a === QUEUE_BUSY).length, 9);
  const running = await db.db
    .selectFrom('jobs')
    .select(['state', 'queueSlot'])
    .where('queueKey', '=', key)
    .where('state', '=', 'Running')
    .execute();
  assert.deepEqual(running, [{ state: 'Running', queueSlot: 0 }]);
});

test('a queue of parallelism 2 runs two; the third waits until one ends, then takes the freed slot', async () => {
  const key = `host:${newId()}`;
  const [a, b, c] = await Promise.all([job(key, nodes[0]!), job(key, nodes[1]!), job(key, nodes[2]!)]);
  const q = { key, parallelism: 2 };
  const first = await claimJob(db.db, nodes[0]!, a!.uuid, q);
  const second = await claimJob(db.db, nodes[1]!, b!.uuid, q);
  assert.ok(first !== QUEUE_BUSY && first && second !== QUEUE_BUSY && second);
  assert.deepEqual([first.row.queueSlot, second.row.queueSlot].sort(), [0, 1]);
  assert.equal(await claimJob(db.db, nodes[2]!, c!.uuid, q), QUEUE_BUSY);
  const done = await finishJob(db.db, nodes[0]!, first.row, { ok: true, result: null }, undefined);
  assert.equal(done?.row.state, 'Succeeded');
  const third = await claimJob(db.db, nodes[2]!, c!.uuid, q);
  assert.ok(third !== QUEUE_BUSY && third);
  assert.equal(third.row.queueSlot, first.row.queueSlot, 'the slot the finished job freed');
});

test('a Running job taken over from a dead node keeps its slot; the others stay busy', async () => {
  const key = `vm:${newId()}`;
  const [a, b] = await Promise.all([job(key, nodes[0]!), job(key, nodes[1]!)]);
  const q = { key, parallelism: 1 };
  const claimed = await claimJob(db.db, nodes[0]!, a!.uuid, q);
  assert.ok(claimed !== QUEUE_BUSY && claimed);
  // node 0 dies; node 2 takes its job over (engine.recover's UPDATE) and claims it again
  await db.db.updateTable('jobs').set({ ownerNode: nodes[2]! }).where('uuid', '=', a!.uuid).execute();
  const again = await claimJob(db.db, nodes[2]!, a!.uuid, q);
  assert.ok(again !== QUEUE_BUSY && again);
  assert.equal(again.wasInterrupted, true);
  assert.equal(again.row.queueSlot, 0);
  assert.equal(await claimJob(db.db, nodes[1]!, b!.uuid, q), QUEUE_BUSY);
  // the job's old owner can no longer claim or finish it
  assert.equal(await claimJob(db.db, nodes[0]!, a!.uuid, q), undefined);
  assert.equal(
    await finishJob(db.db, nodes[0]!, again.row as JobRow, { ok: true, result: null }, undefined),
    undefined,
  );
});
