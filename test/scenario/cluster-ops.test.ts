/**
 * Adding and removing a management node (issue 10 item 6, docs/cluster.md "Adding and removing a
 * management node"), seen through `GET /v1/cluster/status`: a third node started on the same
 * database joins a running two-node cluster (Running, owning a share of the hosts); one node
 * stopped with SIGINT (Ctrl-C: drain) leaves cleanly — exit 0, state Stopped, not fenced — and
 * every host it owned is owned by a live node at once, without waiting for dead-after.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cliRunner } from '../support/cli.js';
import { Api, type TestNode } from '../support/node.js';
import { type Cluster, startCluster } from './cluster-fixtures.js';
import { CRASH_PASSWORD } from './crash-fixtures.js';
import { buildVmEnv } from './vm-env.js';

interface Status {
  nodes: Array<{ uuid: string; name: string; state: string; ownedHosts: number; fencedBy: string | null }>;
  database: { role: string; serverVersion: string; sizeBytes: number; replayLagSeconds: number | null };
  ownership: Array<{ node: string; nodeUuid: string; hosts: string[] }>;
}

const HOSTS = 12;
let cluster: Cluster;
let api: Api;

before(async () => {
  cluster = await startCluster('clops', 2);
  api = await new Api(cluster.nodes[1]!.url).login('admin', CRASH_PASSWORD);
  await buildVmEnv({ admin: api } as unknown as TestNode, { prefix: 'clops', hosts: HOSTS });
});
after(() => cluster?.cleanup());

async function status(): Promise<Status> {
  const res = await api.get('/v1/cluster/status');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as unknown as Status;
}

const owned = (s: Status) => s.ownership.flatMap((o) => o.hosts).sort();

test('a third node joins a running cluster; a node stopped with Ctrl-C leaves cleanly and its hosts are re-owned', async () => {
  const before = await status();
  assert.equal(before.database.role, 'primary');
  assert.ok(before.database.sizeBytes > 0);
  assert.equal(before.database.replayLagSeconds, null);
  assert.deepEqual(
    before.nodes.map((n) => [n.name, n.state]),
    [
      ['clops-0', 'Running'],
      ['clops-1', 'Running'],
    ],
  );
  assert.equal(owned(before).length, HOSTS, 'every host has exactly one owner');

  const third = await cluster.add();
  const thirdUuid = await third.uuid();
  const joined = await status();
  assert.deepEqual(
    joined.nodes.map((n) => [n.name, n.state]),
    [
      ['clops-0', 'Running'],
      ['clops-1', 'Running'],
      ['clops-2', 'Running'],
    ],
  );
  assert.equal(owned(joined).length, HOSTS);
  assert.deepEqual(owned(joined), owned(before), 'the same hosts, each owned once');
  const share = joined.ownership.find((o) => o.nodeUuid === thirdUuid)!;
  assert.ok(
    share.hosts.length > 0,
    `the new node owns a share of ${HOSTS} hosts: ${JSON.stringify(joined.ownership)}`,
  );
  for (const n of joined.nodes)
    assert.equal(n.ownedHosts, joined.ownership.find((o) => o.nodeUuid === n.uuid)!.hosts.length);

  // the CLI shows the same: every node Running, and the hosts of each
  const cli = cliRunner();
  const login = await cli.run([
    'login',
    '--url',
    third.url,
    '--account',
    'admin',
    '--password',
    CRASH_PASSWORD,
  ]);
  assert.equal(login.code, 0, login.stderr);
  const table = await cli.run(['cluster', 'status']);
  assert.equal(table.code, 0, table.stderr);
  for (const name of ['clops-0', 'clops-1', 'clops-2'])
    assert.match(table.stdout, new RegExp(`${name}\\s+http://\\S+\\s+\\S+\\s+Running`));
  assert.match(table.stdout, /database: PostgreSQL \d+[^,]*, primary, [\d.]+ MiB/);
  assert.match(table.stdout, new RegExp(`clops-2\\s+${share.hosts.join(', ')}`));
  const json = await cli.run(['cluster', 'status', '-f', 'json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(owned(JSON.parse(json.stdout) as Status), owned(joined));

  // remove node 0 cleanly: Ctrl-C drains it and marks it stopped
  const leaving = cluster.nodes[0]!;
  const leavingUuid = await leaving.uuid();
  const itsHosts = joined.ownership.find((o) => o.nodeUuid === leavingUuid)!.hosts;
  await leaving.process.interrupt();
  const left = await status();
  const gone = left.nodes.find((n) => n.uuid === leavingUuid)!;
  assert.equal(gone.state, 'Stopped');
  assert.equal(gone.fencedBy, null);
  assert.equal(gone.ownedHosts, 0);
  assert.deepEqual(
    left.ownership.map((o) => o.node).sort(),
    ['clops-1', 'clops-2'],
    'only the live nodes own hosts',
  );
  assert.deepEqual(owned(left), owned(before), 'every host, its hosts included, has a live owner at once');
  for (const h of itsHosts) assert.ok(owned(left).includes(h));
  // any node answers the same: the status is read from the shared database
  const viaNew = await new Api(third.url).login('admin', CRASH_PASSWORD);
  const again = (await viaNew.get('/v1/cluster/status')).body as unknown as Status;
  assert.deepEqual(owned(again), owned(before));
});
