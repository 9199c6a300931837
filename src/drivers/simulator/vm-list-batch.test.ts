/**
 * vm.list of several simulated hosts asked in the same instant shares one read, and each host
 * still gets exactly its own VMs (none, when it has none).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { statementsSent } from '../../db/prepared.js';
import { listVms } from './vm-list-batch.js';

let h: TestDatabase;
before(async () => {
  h = await createTestDatabase({ max: 2 });
});
after(() => h.drop());

test('hosts listed in the same instant share one statement and get their own VMs', async () => {
  const vm = (n: number) => `01937a1e-0000-7000-8000-${String(n).padStart(12, '0')}`;
  await h.db
    .insertInto('simulatorVms')
    .values([
      { vmUuid: vm(1), hostAddress: '10.9.0.1', state: 'Running', cpu: 1, memory: 1 },
      { vmUuid: vm(2), hostAddress: '10.9.0.1', state: 'Stopped', cpu: 1, memory: 1 },
      { vmUuid: vm(3), hostAddress: '10.9.0.2', state: 'Paused', cpu: 1, memory: 1 },
    ])
    .execute();
  const before = statementsSent.count;
  const [one, two, three] = await Promise.all([
    listVms(h.db, '10.9.0.1'),
    listVms(h.db, '10.9.0.2'),
    listVms(h.db, '10.9.0.3'),
  ]);
  assert.equal(statementsSent.count - before, 1);
  assert.deepEqual(
    one.sort((x, y) => x.uuid.localeCompare(y.uuid)),
    [
      { uuid: vm(1), state: 'Running' },
      { uuid: vm(2), state: 'Stopped' },
    ],
  );
  assert.deepEqual(two, [{ uuid: vm(3), state: 'Paused' }]);
  assert.deepEqual(three, []);
  // a later call reads again (sees what changed since)
  await h.db.deleteFrom('simulatorVms').where('vmUuid', '=', vm(3)).execute();
  assert.deepEqual(await listVms(h.db, '10.9.0.2'), []);
});
