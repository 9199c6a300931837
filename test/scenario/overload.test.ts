/**
 * Overload (issue 8 item 6): a node process with small in-flight limits (NIMBUS_SETTINGS) gets
 * 1,500 requests at once on keep-alive connections, lists of 1,000 VMs and VM creates mixed,
 * while /v1/health and /metrics are polled. Claims:
 * - health and metrics keep answering, fast (generous bounds below; they wait for the node's CPU
 *   only, never for the database pool; the reporter saw 80 s); the figures are printed, as timing
 *   proper belongs in benchmarks;
 * - the excess is refused with 503 OVERLOADED and Retry-After, the rest succeeds;
 * - nothing is lost: every accepted create ends as a Succeeded job with its VM; a refused create
 *   left no VM and no job behind;
 * - the node's peak RSS (VmHWM) stays under RSS_BOUND_BYTES.
 * Loopback only; every socket and the process are closed in `after`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { loadavg } from 'node:os';
import { after, test } from 'node:test';
import { Api, type TestNode } from '../support/node.js';
import { CRASH_PASSWORD, crashHarness, type ServerProcess, sleep, waitUntil } from './crash-fixtures.js';
import { buildVmEnv, GiB } from './vm-env.js';

/** small limits so a test-sized flood overflows them; OVERLOAD_SETTINGS replaces them (to measure) */
const LIMITS = process.env.OVERLOAD_SETTINGS
  ? JSON.parse(process.env.OVERLOAD_SETTINGS)
  : { maxInFlightReads: 16, maxInFlightWrites: 64, maxInFlightWaits: 64 };
const SEEDED = 1000;
const LISTS = 900;
const CREATES = 600;
/**
 * Health's median and every health/metrics call stay under these on a machine loaded 25-fold by
 * other work (measured: p50 0.6-1.3 s, max 2.3-4.7 s for health; idle, milliseconds); the
 * reporter saw 80 s
 */
const HEALTH_MEDIAN_BOUND_MS = 5_000;
const HEALTH_BOUND_MS = 30_000;
/**
 * Peak RSS of the node: measured 211-388 MiB with these limits (from 190-230 MiB before the flood),
 * 505 MiB for the same flood without limits (BENCHMARKS.md)
 */
const RSS_BOUND_BYTES = 450 * 1024 * 1024;

const harness = crashHarness();
const agents: Agent[] = [];
after(async () => {
  for (const a of agents) a.destroy();
  await harness.cleanup();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** One HTTP call on `agent`, bounded by `timeoutMs`. */
function call(
  agent: Agent,
  url: string,
  method: string,
  token: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      url,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            ms: Date.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** CPU time (user + system) a process has used, ms. */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 1/100 s
}

/** VmRSS and VmHWM (peak) of a process, bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

test('1,500 requests at once: health stays fast, the excess gets 503 + Retry-After, nothing is lost, RSS bounded', async () => {
  const node = await harness.setup(`overload-${Math.random().toString(36).slice(2, 8)}`);
  // the child inherits this process's environment (crash-fixtures.ts)
  process.env.NIMBUS_SETTINGS = JSON.stringify(LIMITS);
  let server: ServerProcess;
  try {
    server = node.start();
  } finally {
    delete process.env.NIMBUS_SETTINGS;
  }
  await server.healthy();
  const api = await new Api(node.url).login('admin', CRASH_PASSWORD);
  const token = api.token as string;
  const env = await buildVmEnv({ admin: api } as unknown as TestNode, {
    hosts: 20,
    prefix: 'ov',
    hostCpu: 64,
    hostMemory: 256 * GiB,
    capacity: 4096 * GiB,
  });
  const vmBody = (name: string) => ({ name, imageUuid: env.image, instanceOfferingUuid: env.small });

  // a thousand VMs, so each list below is a full page of 1,000
  const seedAgent = new Agent({ keepAlive: true, maxSockets: 32 });
  agents.push(seedAgent);
  for (let i = 0; i < SEEDED; i += 32) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(32, SEEDED - i) }, (_, k) =>
        call(seedAgent, `${node.url}/v1/vms`, 'POST', token, vmBody(`seed-${i + k}`)),
      ),
    );
    for (const r of batch) assert.equal(r.status, 202, r.body);
  }
  await waitUntil('the seeded VMs to be created', async () => {
    const { rows } = await node.observer.pool.query(
      `select count(*)::int as n from jobs where state in ('Pending', 'Running')`,
    );
    return rows[0].n === 0;
  });
  const before = memoryOf(server.pid);
  const cpuBefore = cpuMsOf(server.pid);
  const selfCpuBefore = process.cpuUsage();

  // the load: every request on its own keep-alive socket, all sent at once
  const loadAgent = new Agent({
    keepAlive: true,
    maxSockets: LISTS + CREATES,
    maxFreeSockets: LISTS + CREATES,
  });
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 2 });
  agents.push(loadAgent, probeAgent);
  // the connections exist before the flood, as keep-alive clients' would: opened 250 more at a
  // time (a burst of new connections beyond the listen backlog of 511 would be dropped and
  // retried by TCP for minutes, which tests the kernel, not the node)
  for (let open = 250; open <= LISTS + CREATES; open += 250)
    await Promise.all(
      Array.from({ length: open }, () => call(loadAgent, `${node.url}/v1/health`, 'GET', token)),
    );
  // the probe connections exist before the flood, as a load balancer's would
  await call(probeAgent, `${node.url}/v1/health`, 'GET', token);
  await call(probeAgent, `${node.url}/metrics`, 'GET', token);
  let loading = true;
  const started = Date.now();
  const health: Reply[] = [];
  const scrapes: Reply[] = [];
  const poll = (async () => {
    // health as often as a load balancer might; metrics as a scraper would (each scrape costs
    // the node real work: the process metrics walk every open socket)
    for (let i = 0; loading; i++) {
      const h = await call(probeAgent, `${node.url}/v1/health`, 'GET', token, undefined, 30_000);
      health.push(h);
      if (i % 10 === 0)
        scrapes.push(await call(probeAgent, `${node.url}/metrics`, 'GET', token, undefined, 30_000));
      if (process.env.OVERLOAD_DEBUG) console.log(`# health at ${Date.now() - started} ms: ${h.ms} ms`);
      await sleep(50);
    }
  })();
  const requests = [
    ...Array.from({ length: LISTS }, () => ({ kind: 'list' as const, name: '' })),
    ...Array.from({ length: CREATES }, (_, i) => ({ kind: 'create' as const, name: `load-${i}` })),
  ].sort(() => Math.random() - 0.5);
  // a reply, or status 0 when the connection failed (on a starved machine Node's HTTP server drops
  // a connection whose request it could not read within its headersTimeout of 60 s)
  const replies = await Promise.all(
    requests.map(async (r) => ({
      ...r,
      reply: await (r.kind === 'list'
        ? call(loadAgent, `${node.url}/v1/vms?limit=1000`, 'GET', token)
        : call(loadAgent, `${node.url}/v1/vms`, 'POST', token, vmBody(r.name))
      ).catch(
        (err: Error): Reply => ({ status: 0, headers: {}, body: err.message, ms: Date.now() - started }),
      ),
    })),
  );
  const loadMs = Date.now() - started;
  loading = false;
  await poll;
  const during = memoryOf(server.pid);
  const serverCpuMs = cpuMsOf(server.pid) - cpuBefore;
  const selfCpu = process.cpuUsage(selfCpuBefore);
  const clientCpuMs = Math.round((selfCpu.user + selfCpu.system) / 1000);

  const healthMs = health.map((h) => h.ms);
  const scrapeMs = scrapes.map((m) => m.ms);
  const by = (kind: string, status: number) =>
    replies.filter((r) => r.kind === kind && r.reply.status === status);
  const listsOk = by('list', 200);
  const accepted = by('create', 202);
  const refused = by('create', 503);
  const refusedMs = replies.filter((r) => r.reply.status === 503).map((r) => r.reply.ms);
  const slowestRefusal = Math.max(0, ...refusedMs);
  const mib = (b: number) => `${Math.round(b / 1024 / 1024)} MiB`;
  console.log(
    `# overload: ${requests.length} requests in ${loadMs} ms: lists ${listsOk.length} served / ${by('list', 503).length} refused; ` +
      `creates ${accepted.length} accepted / ${refused.length} refused; ` +
      `${replies.filter((r) => r.reply.status === 0).length} connections failed; slowest 503 ${slowestRefusal} ms, ` +
      `slowest list ${Math.max(0, ...listsOk.map((r) => r.reply.ms))} ms; ` +
      `health ${health.length} polls p50 ${percentile(healthMs, 50)} ms max ${Math.max(...healthMs)} ms; ` +
      `metrics ${scrapes.length} scrapes max ${Math.max(...scrapeMs)} ms; ` +
      `CPU during the load: node ${serverCpuMs} ms, test client ${clientCpuMs} ms; ` +
      `RSS before ${mib(before.rss)}, after ${mib(during.rss)}, peak ${mib(during.peak)}; ` +
      `load average ${loadavg()[0]?.toFixed(1)}`,
  );

  // health and metrics answered every time, far from the reporter's 80 s; generous bounds, as the
  // time a starved machine gives the node varies tenfold (BENCHMARKS.md has the measured figures)
  assert.ok(health.length >= 3, `health was polled ${health.length} times`);
  for (const h of health) assert.equal(h.status, 200, h.body);
  for (const m of scrapes) assert.equal(m.status, 200, m.body.slice(0, 200));
  assert.ok(percentile(healthMs, 50) < HEALTH_MEDIAN_BOUND_MS, `health p50 ${percentile(healthMs, 50)} ms`);
  assert.ok(Math.max(...healthMs, ...scrapeMs) < HEALTH_BOUND_MS);

  // refused with 503 OVERLOADED and Retry-After, or served
  const failed = replies.filter((r) => r.reply.status === 0);
  assert.ok(
    failed.length <= requests.length / 20,
    `${failed.length} connections failed: ${failed[0]?.reply.body}`,
  );
  for (const r of replies)
    assert.ok([0, 200, 202, 503].includes(r.reply.status), `${r.reply.status} ${r.reply.body}`);
  for (const r of replies.filter((x) => x.reply.status === 503)) {
    assert.equal(r.reply.headers['retry-after'], '1');
    const error = JSON.parse(r.reply.body).error;
    assert.equal(error.code, 'OVERLOADED');
    assert.equal(error.reason, 'Unavailable');
    assert.equal(error.retryable, true);
  }
  for (const r of listsOk.slice(0, 5)) assert.equal(JSON.parse(r.reply.body).items.length, 1000);
  assert.ok(by('list', 503).length > 0, 'some lists were refused');
  assert.ok(refused.length > 0, 'some creates were refused');
  assert.ok(listsOk.length > 0 && accepted.length > 0, 'some of each were served');
  assert.ok(during.peak < RSS_BOUND_BYTES, `peak RSS ${mib(during.peak)} under ${mib(RSS_BOUND_BYTES)}`);

  // nothing lost: every accepted create's job ends Succeeded with its VM; refused ones left nothing
  const jobUuids = accepted.map((r) => JSON.parse(r.reply.body).uuid as string);
  await waitUntil(
    'every accepted create to finish',
    async () => {
      const { rows } = await node.observer.pool.query(
        `select count(*)::int as n from jobs where uuid = any($1) and state in ('Succeeded', 'Failed', 'Cancelled')`,
        [jobUuids],
      );
      return rows[0].n === jobUuids.length;
    },
    180_000,
  );
  const { rows: jobStates } = await node.observer.pool.query(
    `select state, count(*)::int as n from jobs where uuid = any($1) group by state`,
    [jobUuids],
  );
  assert.deepEqual(jobStates, [{ state: 'Succeeded', n: accepted.length }]);
  // every create job ends (also those of creates whose reply was lost with its connection)
  await waitUntil('no unfinished job', async () => {
    const { rows } = await node.observer.pool.query(
      `select count(*)::int as n from jobs where state in ('Pending', 'Running')`,
    );
    return rows[0].n === 0;
  });
  const { rows: vms } = await node.observer.pool.query(
    `select v.name, v.state, j.state as job from vms v join jobs j on j.resource_uuid = v.uuid and j.kind = 'vm.create' where v.name like 'load-%'`,
  );
  const names = new Set(vms.map((v: { name: string }) => v.name));
  const failedNames = new Set(failed.map((r) => r.name));
  for (const r of accepted) assert.ok(names.has(r.name), `${r.name} exists`);
  for (const r of refused) assert.ok(!names.has(r.name), `refused ${r.name} created no VM`);
  for (const name of names)
    assert.ok(
      accepted.some((r) => r.name === name) || failedNames.has(name),
      `${name}: accepted or reply lost`,
    );
  assert.ok(
    vms.every((v: { state: string; job: string }) => v.state === 'Running' && v.job === 'Succeeded'),
    'every VM made is Running, its create job Succeeded',
  );
  const { rows: createJobs } = await node.observer.pool.query(
    `select count(*)::int as n from jobs where kind = 'vm.create'`,
  );
  assert.equal(createJobs[0].n, SEEDED + names.size, 'one job for each VM made and no other');

  const peak = memoryOf(server.pid).peak;
  assert.ok(peak < RSS_BOUND_BYTES, `peak RSS ${mib(peak)} under ${mib(RSS_BOUND_BYTES)} after the jobs ran`);
  await server.interrupt();
});
