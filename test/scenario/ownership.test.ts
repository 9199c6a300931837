/**
 * Ownership of hosts among management nodes (src/cluster/ownership.ts): with two live nodes on
 * one database every host is owned by exactly one of them, both get a share, and when one node
 * stops the other owns every host — what lets each node reconcile only its own hosts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ownedBy } from '../../src/cluster/ownership.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';

let db: TestDatabase;
let a: TestNode;
let b: TestNode;

before(async () => {
  db = await createTestDatabase({ max: 5 });
  a = await startTestNode({ database: db, nodeName: 'own-a' });
  b = await startTestNode({ database: db, nodeName: 'own-b' });
  await buildInfra(a.admin, 40, 'own');
});
after(async () => {
  await b.stop().catch(() => {});
  await a.stop();
  await db.drop();
});

const owned = async (node: TestNode) =>
  (await db.db.selectFrom('hosts').select('uuid').where(ownedBy('hosts', node.node.nodeId)).execute()).map(
    (h) => h.uuid,
  );

test('two live nodes split the hosts: each host has exactly one owner, both have some', async () => {
  const all = (await db.db.selectFrom('hosts').select('uuid').execute()).map((h) => h.uuid).sort();
  const [ofA, ofB] = [await owned(a), await owned(b)];
  assert.ok(ofA.length > 0 && ofB.length > 0, `a: ${ofA.length}, b: ${ofB.length}`);
  assert.deepEqual([...ofA, ...ofB].sort(), all);
  assert.equal(new Set([...ofA, ...ofB]).size, all.length, 'no host owned twice');
  // the same answer every time it is asked
  assert.deepEqual(await owned(a), ofA);
});

test('GET /v1/cluster/status shows both nodes, the primary database and the same ownership', async () => {
  const res = await b.admin.get('/v1/cluster/status');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const names = (res.body.nodes as Array<{ name: string; state: string }>)
    .filter((n) => n.name === 'own-a' || n.name === 'own-b')
    .map((n) => [n.name, n.state]);
  assert.deepEqual(names, [
    ['own-a', 'Running'],
    ['own-b', 'Running'],
  ]);
  assert.equal(res.body.database.role, 'primary');
  assert.match(res.body.database.serverVersion, /^\d+/);
  const hostNames = async (node: TestNode) =>
    (
      await db.db
        .selectFrom('hosts')
        .select('name')
        .where(ownedBy('hosts', node.node.nodeId))
        .orderBy('name')
        .execute()
    ).map((h) => h.name);
  const ownership = res.body.ownership as Array<{ nodeUuid: string; hosts: string[] }>;
  assert.deepEqual(ownership.find((o) => o.nodeUuid === a.node.nodeId)?.hosts, await hostNames(a));
  assert.deepEqual(ownership.find((o) => o.nodeUuid === b.node.nodeId)?.hosts, await hostNames(b));
});

test('a node that stops hands its share to the survivor; the survivor keeps what it had', async () => {
  const before = await owned(a);
  await b.stop();
  const after = await owned(a);
  const all = (await db.db.selectFrom('hosts').select('uuid').execute()).map((h) => h.uuid);
  assert.equal(after.length, all.length);
  for (const h of before) assert.ok(after.includes(h));
});
