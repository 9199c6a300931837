/**
 * The load balancer (issue 10 item 2, docs/cluster.md): the shipped deploy/haproxy/haproxy.cfg in
 * front of three node processes. Requests spread over all three; an event stream works through
 * it; reads keep succeeding while one node is SIGKILLed (HAProxy retries them on another node)
 * and writes succeed again once its health check failed; a draining node (SIGTERM with a job in
 * flight: /v1/health 503) gets no request while it finishes its job.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Api, type TestNode } from '../support/node.js';
import { type Balancer, type Cluster, NO_HAPROXY, startCluster, startHaproxy } from './cluster-fixtures.js';
import { CRASH_PASSWORD, jobsOf, sleep, waitUntil } from './crash-fixtures.js';
import { buildVmEnv, type VmEnv } from './vm-env.js';

let cluster: Cluster;
let balancer: Balancer;
let lb: string;
let api: Api;
let env: VmEnv;

before(async () => {
  if (NO_HAPROXY) return;
  cluster = await startCluster('clha', 3, { reconcileIntervalSeconds: 5 });
  balancer = await startHaproxy(cluster);
  lb = balancer.url;
  api = await new Api(lb).login('admin', CRASH_PASSWORD);
  env = await buildVmEnv({ admin: api } as unknown as TestNode, { prefix: 'clha', hosts: 6 });
});
after(async () => {
  await balancer?.stop();
  await cluster?.cleanup();
});

const create = (name: string) =>
  api.post('/v1/vms', { name, imageUuid: env.image, instanceOfferingUuid: env.small });

test('an event stream through HAProxy sees a job end', { skip: NO_HAPROXY }, async () => {
  const controller = new AbortController();
  const res = await fetch(`${lb}/v1/events/stream?type=job.state.changed`, {
    headers: { authorization: `Bearer ${api.token}` },
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body!.getReader();
  let text = '';
  const job = await api.job('POST', '/v1/vms', {
    name: 'clha-sse',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  const deadline = Date.now() + 10_000;
  while (!text.includes(`"resourceUuid":"${job.uuid}"`) || !text.includes('"state":"Succeeded"')) {
    if (Date.now() > deadline)
      assert.fail(`the stream did not show job ${job.uuid} ending: ${text.slice(-500)}`);
    const { value } = await reader.read();
    text += new TextDecoder().decode(value);
  }
  controller.abort();
});

test('SIGKILL of one node: reads through HAProxy never fail, writes succeed once its check failed', {
  skip: NO_HAPROXY,
}, async (t) => {
  const victim = cluster.nodes[2]!;
  let stop = false;
  const reads = { ok: 0, failed: [] as string[] };
  const reader = async () => {
    while (!stop) {
      const r = await api.get('/v1/vms?limit=5').catch((err: Error) => ({ status: 0, body: err.message }));
      if (r.status === 200) reads.ok++;
      else reads.failed.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    }
  };
  const writes: Array<{ status: number; at: number; uuid?: string }> = [];
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const r = await create(`clha-w${w}-${i}`).catch(() => ({ status: 0, body: undefined }));
      writes.push({ status: r.status, at: Date.now(), ...(r.status === 202 ? { uuid: r.body.uuid } : {}) });
    }
  };
  const running = [...Array.from({ length: 4 }, reader), ...Array.from({ length: 2 }, (_, w) => writer(w))];
  await sleep(1500);
  await victim.process.killHard();
  const killedAt = Date.now();
  await sleep(5000);
  stop = true;
  await Promise.all(running);
  const byStatus: Record<number, number> = {};
  for (const w of writes) byStatus[w.status] = (byStatus[w.status] ?? 0) + 1;
  t.diagnostic(
    `reads: ${reads.ok} ok, ${reads.failed.length} failed; writes by status: ${JSON.stringify(byStatus)}`,
  );
  assert.deepEqual(reads.failed, [], 'every read through HAProxy succeeded');
  assert.ok(reads.ok > 20);
  // a write in flight on the victim when it died may fail (it is never sent twice); once HAProxy's
  // checks took the node out (2 × 1 s), every write is accepted
  const late = writes.filter((w) => w.at > killedAt + 3000);
  assert.ok(late.length > 0);
  assert.deepEqual(
    late.filter((w) => w.status !== 202),
    [],
    'writes after the node was taken out were accepted',
  );
  const accepted = new Set(writes.filter((w) => w.uuid).map((w) => w.uuid!));
  await waitUntil(
    'every accepted create ended',
    async () =>
      (await jobsOf(cluster.observer))
        .filter((j) => accepted.has(j.uuid))
        .every((j) => j.state === 'Succeeded' || j.state === 'Failed'),
    60_000,
  );
});

test('a draining node (SIGTERM, a job in flight) is sent nothing: its /v1/health is 503', {
  skip: NO_HAPROXY,
}, async () => {
  const node = cluster.nodes[1]!;
  const direct = await new Api(node.url).login('admin', CRASH_PASSWORD);
  const slow = await direct.post('/v1/simulator/faults', { point: 'step:zone.update/apply', delayMs: 8000 });
  assert.equal(slow.status, 201, JSON.stringify(slow.body));
  const zone = await direct.patch(`/v1/zones/${env.zone}`, { description: 'slow' });
  assert.equal(zone.status, 202, JSON.stringify(zone.body));
  await waitUntil(
    'the slow job running',
    async () => (await direct.get(`/v1/jobs/${zone.body.uuid}`)).body.state === 'Running',
  );
  node.process.child.kill('SIGTERM');
  await waitUntil('the node draining', async () => {
    const h = await fetch(`${node.url}/v1/health`).catch(() => undefined);
    return h?.status === 503 && ((await h.json()) as { status: string }).status === 'draining';
  });
  await sleep(2500); // two failed checks, one second apart
  const answers = await Promise.all(Array.from({ length: 30 }, () => fetch(`${lb}/v1/ready`)));
  // the draining node answers /v1/ready with 503 draining: none of these reached it
  assert.deepEqual(
    answers.map((r) => r.status),
    Array(30).fill(200),
  );
  const still = await fetch(`${node.url}/v1/ready`);
  assert.equal(still.status, 503, 'the node was still draining during the requests');
  await node.process.exited;
});
