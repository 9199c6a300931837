/**
 * A cluster of three management node processes on one database (issue 10 item 1, docs/cluster.md):
 * work on one resource is serialized across nodes. Two tag changes and a stop of the same VM,
 * sent at the same moment through three different nodes (each runs the job it accepted: its
 * steps slowed down so that any overlap would show), run one after the other — their
 * [startedAt, finishedAt] never overlap — on at least two different nodes; a long-poll on a node
 * answers for jobs that ran on the others, and an event stream opened on one node sees the
 * job events of all three (LISTEN/NOTIFY relay). `management-nodes` lists the three, Running,
 * with the hosts they own adding up to all of them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, type TestNode } from '../support/node.js';
import { type Cluster, startCluster } from './cluster-fixtures.js';
import { CRASH_PASSWORD } from './crash-fixtures.js';
import { buildVmEnv, type VmEnv } from './vm-env.js';

let cluster: Cluster;
let apis: Api[];
let env: VmEnv;

before(async () => {
  cluster = await startCluster('clser', 3, { reconcileIntervalSeconds: 5 });
  apis = await Promise.all(cluster.nodes.map((n) => new Api(n.url).login('admin', CRASH_PASSWORD)));
  env = await buildVmEnv({ admin: apis[0] } as unknown as TestNode, { prefix: 'clser', hosts: 6 });
});
after(() => cluster?.cleanup());

/** Collects the SSE events of `url` until `stop()`; resolves once the stream is connected. */
async function stream(url: string, token: string) {
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/events/stream?type=job.state.changed`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const seen: Array<{ resourceUuid: string; data: { state: string } }> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (data) seen.push(JSON.parse(data.slice(6)));
        end = buffer.indexOf('\n\n');
      }
    }
  })();
  return {
    seen,
    async stop() {
      controller.abort();
      await pump;
    },
  };
}

test('two tag changes and a stop of one VM through three nodes run one at a time, on several nodes; waits and streams cross nodes', async (t) => {
  const began = Date.now();
  const vm = await apis[0]!.job('POST', '/v1/vms', {
    name: 'clser-vm',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(vm.state, 'Succeeded', JSON.stringify(vm));
  const uuid = vm.resourceUuid as string;
  t.diagnostic(`vm created in ${Date.now() - began} ms`);
  // every node's steps slow: an overlap of two of these jobs would last about a second
  for (const api of apis) {
    for (const point of ['step:tag.set/set-tag', 'command:vm.stop']) {
      const res = await api.post('/v1/simulator/faults', { point, delayMs: 800 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  }
  const events = await stream(cluster.nodes[2]!.url, apis[2]!.token!);
  const accepted = await Promise.all([
    apis[1]!.post(`/v1/vms/${uuid}/tags`, { key: 'first', value: 'a' }),
    apis[2]!.post(`/v1/vms/${uuid}/tags`, { key: 'second', value: 'b' }),
    apis[0]!.post(`/v1/vms/${uuid}/actions/stop`, {}),
  ]);
  for (const r of accepted) assert.equal(r.status, 202, JSON.stringify(r.body));
  // every job waited for through node 0, which accepted only one of them
  const jobs = await Promise.all(accepted.map((r) => apis[0]!.get(`/v1/jobs/${r.body.uuid}?wait=true`)));
  for (const j of jobs) assert.equal(j.body.state, 'Succeeded', JSON.stringify(j.body));

  const rows = await cluster.observer.db
    .selectFrom('jobs')
    .select(['uuid', 'kind', 'startedAt', 'finishedAt', 'ownerNode', 'queueKey'])
    .where(
      'uuid',
      'in',
      accepted.map((r) => r.body.uuid as string),
    )
    .orderBy('startedAt')
    .execute();
  assert.equal(rows.length, 3);
  const t0 = new Date(rows[0]!.startedAt!).getTime();
  t.diagnostic(
    rows
      .map(
        (r) =>
          `${r.kind} ${new Date(r.startedAt!).getTime() - t0}–${new Date(r.finishedAt!).getTime() - t0} ms`,
      )
      .join(', '),
  );
  for (const r of rows) assert.equal(r.queueKey, `vm:${uuid}`);
  for (let i = 1; i < rows.length; i++) {
    const before = rows[i - 1]!;
    const next = rows[i]!;
    assert.ok(
      new Date(next.startedAt!).getTime() >= new Date(before.finishedAt!).getTime(),
      `${next.kind} started ${new Date(next.startedAt!).toISOString()} before ${before.kind} finished ${new Date(before.finishedAt!).toISOString()}`,
    );
  }
  const owners = new Set(rows.map((r) => r.ownerNode));
  assert.ok(owners.size >= 2, `the jobs ran on ${owners.size} node(s); each node runs what it accepted`);

  // the stream on node 2 saw every job end, wherever it ran
  const waited = Date.now();
  const deadline = Date.now() + 10_000;
  const ended = () =>
    new Set(events.seen.filter((e) => e.data.state === 'Succeeded').map((e) => e.resourceUuid));
  while (Date.now() < deadline && !rows.every((r) => ended().has(r.uuid)))
    await new Promise((r) => setTimeout(r, 100));
  t.diagnostic(`stream caught up ${Date.now() - waited} ms after the waits`);
  await events.stop();
  t.diagnostic('stream closed');
  for (const r of rows)
    assert.ok(ended().has(r.uuid), `node 2's stream saw ${r.kind} (ran on another node) end`);
});

test('management-nodes shows the three nodes Running, their owned hosts adding up to all hosts', async () => {
  const list = await apis[1]!.get('/v1/management-nodes');
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const items = list.body.items as Array<Record<string, any>>;
  assert.equal(items.length, 3);
  for (const n of items) {
    assert.equal(n.state, 'Running', JSON.stringify(n));
    assert.match(n.address, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(n.version.length > 0);
    assert.equal(typeof n.runningJobs, 'number');
  }
  assert.equal(
    items.reduce((sum, n) => sum + n.ownedHosts, 0),
    env.hosts.length,
    JSON.stringify(items.map((n) => [n.name, n.ownedHosts])),
  );
  const one = await apis[2]!.get(`/v1/management-nodes/${items[0]!.uuid}`);
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.equal(one.body.name, items[0]!.name);
  // admin only
  await apis[0]!.job('POST', '/v1/accounts', { name: 'clser-tenant', password: 'clser-tenant-password' });
  const tenant = await new Api(cluster.nodes[0]!.url).login('clser-tenant', 'clser-tenant-password');
  const refused = await tenant.get('/v1/management-nodes');
  assert.ok(
    refused.status === 403 || (refused.status === 200 && refused.body.items.length === 0),
    JSON.stringify(refused.body),
  );
});
