/**
 * OrphanJobs (docs/cluster.md "Riding through a failover"): the Pending jobs of this node that
 * this process never started — an admission whose answer a failover cut — are found once older
 * than ORPHAN_AFTER_MS; jobs this process runs or waits on, younger ones, other nodes' and
 * Running ones are not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { type DbHandle, openDb } from '../db/pool.js';
import { newId } from '../kernel/ids.js';
import { insertJob } from './jobs.js';
import { ORPHAN_AFTER_MS, OrphanJobs } from './orphan-jobs.js';

let t: TestDatabase;
let db: DbHandle;

before(async () => {
  t = await createTestDatabase({ max: 1 });
  db = openDb(t.url, { max: 2, applicationName: 'orphan-jobs-test' });
});
after(async () => {
  await db.close();
  await t.drop();
});

test('only this node’s old Pending jobs that this process does not know', async () => {
  const me = newId();
  const other = newId();
  const job = async (owner: string, ageMs: number, state: 'Pending' | 'Running' = 'Pending') => {
    const row = await insertJob(
      db.db,
      { kind: 'test.op', accountUuid: newId(), queueKey: `vm:${newId()}` },
      owner,
    );
    await db.db
      .updateTable('jobs')
      .set({ state, createdAt: new Date(Date.now() - ageMs) })
      .where('uuid', '=', row.uuid)
      .execute();
    return row.uuid;
  };
  const orphan = await job(me, ORPHAN_AFTER_MS * 4);
  const known = await job(me, ORPHAN_AFTER_MS * 4);
  const young = await job(me, 0);
  const othersJob = await job(other, ORPHAN_AFTER_MS * 4);
  const running = await job(me, ORPHAN_AFTER_MS * 4, 'Running');
  const orphans = new OrphanJobs();
  orphans.started(known); // waiting in its queue here
  const found = await orphans.find(db.db, me);
  assert.deepEqual(
    found.map((j) => j.uuid),
    [orphan],
    JSON.stringify({ orphan, known, young, othersJob, running }),
  );
  // a job this process gave up on (its runner ended) is found again while still Pending
  orphans.ended(known);
  assert.deepEqual((await orphans.find(db.db, me)).map((j) => j.uuid).sort(), [orphan, known].sort());
});
