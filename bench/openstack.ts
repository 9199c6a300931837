/**
 * npm run bench:openstack -- [--count 1000] [--concurrency 20] [--hosts 100] [--interval 0.2]
 *   [--order openstack,native]
 *
 * The OpenStack façade beside the native API, in one run on one fresh node: H simulated hosts
 * (64 cores, 256 GiB), a public image, a 1-core 1 GiB offering (= flavor), a shared flat L3 with a
 * /16, and a tenant account `demo` (= Keystone project and user) with quotas for both bursts.
 *  - openstack: N servers through the stock openstacksdk (Debian's python3-openstacksdk, run by
 *    bench/openstack-create.py with C threads): create_server, then wait_for_server until ACTIVE
 *    (the SDK polls GET /servers/{id} every --interval s).
 *  - native: N VMs through `POST /v1/vms` as the same tenant with C in flight, each job then
 *    waited for with `GET /v1/jobs/{id}?wait=true` (the server long-polls).
 * Both on the same network, image and offering. Prints per burst: p50/p99 of the create request's
 * latency and of time-to-running (from before the create request), wall time, VMs/s, the node's
 * CPU seconds per VM, HTTP requests and SQL statements per VM (the node's own counters), each
 * VM's create-job duration beside its time to running, the statuses the SDK's polls saw, the
 * reconciler's state repairs of the burst's VMs, the load average; then the ratios. The bursts run one after the other (--order): the second finds N VMs more in
 * the database. Figures only: a benchmark never fails on timing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  ADMIN_PASSWORD,
  Client,
  flags,
  machine,
  ms,
  percentiles,
  pool,
  type Server,
  startServer,
} from './lib.js';
import { cpuSeconds, loadAverage } from './proc-stats.js';
import { setup } from './vm-create-setup.js';

const PYTHON = '/usr/bin/python3'; // Debian's, where python3-openstacksdk lives
const DRIVER = fileURLToPath(new URL('../../bench/openstack-create.py', import.meta.url));
const TENANT = { name: 'demo', password: 'demo-bench-password' };
const GiB = 1024 ** 3;
let sdk = '';
/** the status sequences the SDK's polls saw, with how many servers saw each */
let polled = '';

const f = flags({
  count: { type: 'string', default: '1000' },
  concurrency: { type: 'string', default: '20' },
  hosts: { type: 'string', default: '100' },
  interval: { type: 'string', default: '0.2' },
  order: { type: 'string', default: 'openstack,native' },
});
const positive = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: a positive whole number, got ${value}`);
  return n;
};
const N = positive('count', f.count as string);
const C = positive('concurrency', f.concurrency as string);
const H = positive('hosts', f.hosts as string);
const interval = Number(f.interval);
if (!(interval > 0)) throw new Error(`--interval: seconds > 0, got ${f.interval}`);
const runOrder = (f.order as string).split(',').map((s) => s.trim()) as Array<'openstack' | 'native'>;
if (
  ![...runOrder]
    .sort()
    .join(',')
    .match(/^native,openstack$/)
)
  throw new Error(`--order: openstack,native or native,openstack, got ${f.order}`);

interface Burst {
  name: string;
  ok: number;
  failed: string[];
  wall: number;
  request: ReturnType<typeof percentiles>;
  running: ReturnType<typeof percentiles>;
  nodeCpuPerVm: number;
  clientCpuPerVm?: number;
  connectionsOpened?: number;
  requestsPerVm: Map<string, number>;
  /** requests the node took over 1 s (`>1s METHOD route`) and over 10 s (`>10s …`) to answer */
  slow: Map<string, number>;
  /** SQL statements the node sent (every request and job of the burst) */
  statementsPerVm: number;
  /** the VMs' create jobs, admission to end */
  job: ReturnType<typeof percentiles>;
  /** time to running − the VM's job duration: how long the client took to learn the job ended */
  late: ReturnType<typeof percentiles>;
  /** the three slowest VMs: time to running, its job, its create request (ms) */
  slowest: Array<{ running: number; job: number; request: number }>;
  /** state changes of the burst's VMs made with a reason (the reconciler's repairs) */
  repairs: string;
  /** time to running of each VM, by whole second */
  runningBySecond: string;
  load: { before: string; after: string };
}

/**
 * nimbus_http_requests_total by `METHOD route` (statuses summed), as `>1s METHOD route` the
 * requests the node took more than a second to answer (its latency histogram: count − le="1"),
 * as `>10s …` those over ten seconds,
 * and as `statements` the SQL statements the node sent
 */
async function requestCounts(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  const add = (key: string, n: number) => out.set(key, (out.get(key) ?? 0) + n);
  for (const line of text.split('\n')) {
    const key = `${/method="([^"]*)"/.exec(line)?.[1]} ${/route="([^"]*)"/.exec(line)?.[1]}`;
    const n = Number(line.split(' ').pop());
    if (line.startsWith('nimbus_db_statements_total ')) add('statements', n);
    else if (line.startsWith('nimbus_http_requests_total{')) add(key, n);
    else if (line.startsWith('nimbus_http_request_duration_seconds_count{')) {
      add(`>1s ${key}`, n);
      add(`>10s ${key}`, n);
    } else if (line.startsWith('nimbus_http_request_duration_seconds_bucket{')) {
      if (line.includes('le="1"')) add(`>1s ${key}`, -n);
      if (line.includes('le="10"')) add(`>10s ${key}`, -n);
    }
  }
  return out;
}

/** `12@0s 40@1s`: how many of the times (ms) fall in each whole second */
function bySecond(times: number[]): string {
  const counts = new Map<number, number>();
  for (const t of times) counts.set(Math.floor(t / 1000), (counts.get(Math.floor(t / 1000)) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([sec, n]) => `${n}@${sec}s`)
    .join(' ');
}

interface Run {
  ok: number;
  failed: string[];
  request: number[];
  running: number[];
  /** the VM of each figure in `running` */
  ids: string[];
  /** the burst's own wall time (from the client's clock) */
  wall: number;
  clientCpu?: number;
  /** TCP connections the client opened during the burst */
  connectionsOpened?: number;
}

/**
 * `prepare` connects (off the clock); `go` runs the burst. The node's CPU and request counters
 * are read between the two and after.
 */
/**
 * each VM's create job: from its admission to its end (the node's clock), by VM; and the
 * reconciler's repairs of these VMs
 */
async function jobMs(
  databaseUrl: string,
  ids: string[],
): Promise<{ ms: Map<string, number>; repairs: string }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const r = await db.query<{ vm: string; ms: number }>(
      `select resource_uuid as vm, extract(epoch from (finished_at - created_at)) * 1000 as ms
         from jobs where kind = 'vm.create' and resource_uuid = any($1)`,
      [ids],
    );
    // the reconciler's repairs of these VMs (every repair is a state.changed event with a reason)
    const repairs = await db.query<{ change: string; n: number }>(
      `select (data->>'from') || '→' || (data->>'state') || ' (' || (data->>'reason') || ')' as change,
              count(*)::int as n
         from events where resource_uuid = any($1) and type like '%state.changed' and data ? 'reason'
        group by 1 order by 2 desc`,
      [ids],
    );
    return {
      ms: new Map(r.rows.map((row) => [row.vm, Number(row.ms)])),
      repairs: repairs.rows.map((row) => `${row.change} ×${row.n}`).join(', ') || 'none',
    };
  } finally {
    await db.end();
  }
}

async function measured(
  name: string,
  server: Server,
  prepare: () => Promise<{ go: () => Promise<Run> }>,
): Promise<Burst> {
  const { url, pid } = server;
  const ready = await prepare();
  const before = { load: loadAverage(), cpu: cpuSeconds(pid), requests: await requestCounts(url) };
  const r = await ready.go();
  const cpu = cpuSeconds(pid) - before.cpu;
  const after = await requestCounts(url);
  const { ms: jobs, repairs } = await jobMs(server.databaseUrl, r.ids);
  // how long after its job ended the client learnt it (plus the create request's way in)
  const late = r.ids.map((id, i) => r.running[i]! - (jobs.get(id) ?? Number.NaN));
  const slowest = r.ids
    .map((id, i) => ({ running: r.running[i]!, job: jobs.get(id) ?? Number.NaN, request: r.request[i]! }))
    .sort((a, b) => b.running - a.running)
    .slice(0, 3);
  const requestsPerVm = new Map<string, number>();
  const slow = new Map<string, number>();
  let statementsPerVm = 0;
  for (const [k, v] of after) {
    const d = v - (before.requests.get(k) ?? 0);
    if (d <= 0 || k.includes('/metrics')) continue;
    if (k === 'statements') statementsPerVm = d / N;
    else if (k.startsWith('>')) slow.set(k, d);
    else requestsPerVm.set(k, d / N);
  }
  return {
    name,
    ok: r.ok,
    failed: r.failed,
    wall: r.wall,
    request: percentiles(r.request),
    running: percentiles(r.running),
    nodeCpuPerVm: cpu / N,
    ...(r.clientCpu !== undefined ? { clientCpuPerVm: r.clientCpu / N } : {}),
    ...(r.connectionsOpened !== undefined ? { connectionsOpened: r.connectionsOpened } : {}),
    requestsPerVm,
    slow,
    statementsPerVm,
    runningBySecond: bySecond(r.running),
    job: percentiles([...jobs.values()]),
    late: percentiles(late),
    slowest,
    repairs,
    load: { before: before.load, after: loadAverage() },
  };
}

/** the next line the driver prints (its stdout, read as it comes) */
function lines(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  let buf = '';
  let ended = false;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else queue.push(line);
    }
  });
  child.once('exit', (code) => {
    ended = true;
    for (const w of waiting.splice(0)) w(`exit ${code}`);
  });
  return () =>
    queue.length > 0 || ended
      ? Promise.resolve(queue.shift() ?? 'exit')
      : new Promise((resolve) => waiting.push(resolve));
}

async function viaOpenStack(url: string, inv: { image: string; offering: string; l3: string }) {
  const child = spawn(
    PYTHON,
    [
      DRIVER,
      ...['--auth-url', `${url}/identity/v3`, '--user', TENANT.name, '--password', TENANT.password],
      ...['--project', TENANT.name, '--image', inv.image, '--flavor', inv.offering, '--network', inv.l3],
      ...['--count', String(N), '--concurrency', String(C), '--interval', String(interval)],
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const next = lines(child);
  const first = await next();
  if (first !== 'ready') throw new Error(`the SDK driver did not connect: ${first}`);
  return {
    go: async (): Promise<Run> => {
      child.stdin!.end('go\n');
      const out = JSON.parse(await next());
      const servers = out.servers as Array<{
        create_ms?: number;
        active_ms?: number;
        id?: string;
        polled?: string[];
        status?: string;
        error?: string;
      }>;
      const good = servers.filter((s) => s.status === 'ACTIVE');
      sdk = out.sdk;
      // which statuses the SDK's polls saw, e.g. BUILD→ACTIVE ×990
      const trails = new Map<string, number>();
      for (const s of good)
        trails.set((s.polled ?? []).join('→'), (trails.get((s.polled ?? []).join('→')) ?? 0) + 1);
      polled = [...trails].map(([t, n]) => `${t || '(none)'} ×${n}`).join(', ');
      return {
        ok: good.length,
        failed: servers.filter((s) => s.status !== 'ACTIVE').map((s) => s.error ?? String(s.status)),
        request: good.map((s) => s.create_ms!),
        running: good.map((s) => s.active_ms!),
        ids: good.map((s) => s.id!),
        wall: out.wall_s,
        clientCpu: out.client_cpu_s,
        connectionsOpened: out.connections_opened,
      };
    },
  };
}

async function viaNative(api: Client, inv: { image: string; offering: string; l3: string }) {
  // the same warm start as the SDK's threads: C keep-alive connections open before the clock
  await pool(C, C, () => api.call('GET', '/v1/auth/whoami'));
  return { go: () => nativeBurst(api, inv) };
}

async function nativeBurst(api: Client, inv: { image: string; offering: string; l3: string }): Promise<Run> {
  const request: number[] = [];
  const running: number[] = [];
  const ids: string[] = [];
  const failed: string[] = [];
  const t0 = performance.now();
  await pool(N, C, async (i) => {
    const t0 = performance.now();
    const res = await api.call('POST', '/v1/vms', {
      name: `native-bench-${i}`,
      imageUuid: inv.image,
      instanceOfferingUuid: inv.offering,
      l3NetworkUuids: [inv.l3],
    });
    const accepted = performance.now();
    if (res.status !== 202) return void failed.push(`${res.status} ${JSON.stringify(res.body)}`);
    let job = res.body;
    while (job.state === 'Pending' || job.state === 'Running')
      job = (await api.call('GET', `/v1/jobs/${job.uuid}?wait=true`)).body;
    if (job.state !== 'Succeeded') return void failed.push(JSON.stringify(job.error ?? job.state));
    request.push(accepted - t0);
    running.push(performance.now() - t0);
    ids.push(job.resourceUuid);
  });
  return { ok: request.length, failed, request, running, ids, wall: (performance.now() - t0) / 1000 };
}

function print(b: Burst): void {
  console.log(`\n${b.name}: ${b.ok}/${N} running, ${b.failed.length} failed`);
  for (const e of b.failed.slice(0, 3)) console.log(`  failure: ${e}`);
  console.log(`  wall ${b.wall.toFixed(1)} s, ${(b.ok / b.wall).toFixed(1)} VMs/s`);
  console.log(
    `  create request p50 ${ms(b.request.p50)}, p99 ${ms(b.request.p99)}, max ${ms(b.request.max)}`,
  );
  console.log(
    `  time to running p50 ${ms(b.running.p50)}, p99 ${ms(b.running.p99)}, max ${ms(b.running.max)}`,
  );
  console.log(
    `  node CPU ${(b.nodeCpuPerVm * 1000).toFixed(1)} ms/VM` +
      (b.clientCpuPerVm !== undefined
        ? `, client (python) CPU ${(b.clientCpuPerVm * 1000).toFixed(1)} ms/VM`
        : ''),
  );
  const reqs = [...b.requestsPerVm].sort((x, y) => y[1] - x[1]);
  const total = reqs.reduce((s, [, n]) => s + n, 0);
  console.log(
    `  HTTP requests per VM ${total.toFixed(2)}: ${reqs.map(([k, n]) => `${k} ×${n.toFixed(2)}`).join(', ')}`,
  );
  if (b.connectionsOpened !== undefined)
    console.log(
      `  TCP connections the SDK opened during the burst: ${b.connectionsOpened} (${C} open before)`,
    );
  console.log(`  SQL statements per VM ${b.statementsPerVm.toFixed(1)}`);
  console.log(
    `  create job (admission to end) p50 ${ms(b.job.p50)}, p99 ${ms(b.job.p99)}, max ${ms(b.job.max)}`,
  );
  console.log(
    `  time to running − job: p50 ${ms(b.late.p50)}, p99 ${ms(b.late.p99)}, max ${ms(b.late.max)}; slowest VMs (running/job/request): ${b.slowest.map((x) => `${ms(x.running)}/${ms(x.job)}/${ms(x.request)}`).join(', ')}`,
  );
  console.log(`  state repairs of these VMs (events with a reason): ${b.repairs}`);
  console.log(`  time to running by second: ${b.runningBySecond}`);
  console.log(
    `  requests the node answered in over 1 s / 10 s: ${[...b.slow].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`,
  );
  console.log(`  load average before ${b.load.before}, after ${b.load.after}`);
}

console.log(
  `bench:openstack — ${N} VMs per API, concurrency ${C}, ${H} simulated hosts, SDK poll ${interval} s`,
);
console.log(`machine: ${machine()}; load average ${loadAverage()}`);
const server = await startServer();
try {
  const admin = new Client(server.url);
  await admin.login(ADMIN_PASSWORD);
  const inv0 = await setup(admin, H, 0);
  const { zone, cluster } = inv0;
  const l2 = (
    await admin.done('POST', '/v1/l2-networks', {
      name: 'os-bench-l2',
      zoneUuid: zone,
      type: 'no-vlan',
      physicalInterface: 'eth0',
    })
  ).resourceUuid;
  await admin.done('POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: cluster });
  const l3 = (
    await admin.done('POST', '/v1/l3-networks', {
      name: 'os-bench-net',
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'flat',
      shared: true,
    })
  ).resourceUuid;
  await admin.done('POST', '/v1/ip-ranges', {
    name: 'os-bench-range',
    l3NetworkUuid: l3,
    cidr: '10.210.0.0/16',
  });
  const account = (await admin.done('POST', '/v1/accounts', TENANT)).resourceUuid;
  const quota = await admin.call('PATCH', `/v1/quotas/${account}`, {
    'vm.num': 2 * N,
    'vm.cpu': 2 * N,
    'vm.memory': 2 * N * GiB,
    'volume.capacity': 4 * N * GiB,
  });
  if (quota.status >= 300) throw new Error(`quota: ${quota.status} ${JSON.stringify(quota.body)}`);
  const tenant = new Client(server.url);
  const login = await tenant.call('POST', '/v1/auth/login', {
    account: TENANT.name,
    password: TENANT.password,
  });
  if (login.status !== 200) throw new Error(`tenant login: ${JSON.stringify(login.body)}`);
  tenant.token = login.body.token;
  const inv = { image: inv0.image, offering: inv0.offering, l3 };
  console.log(`set-up ${inv0.seconds.toFixed(1)} s (hosts, storage, image, offering)`);

  const bursts: Record<string, Burst> = {};
  for (const which of runOrder) {
    if (which === 'openstack')
      bursts.openstack = await measured('OpenStack (openstacksdk, Nova façade)', server, () =>
        viaOpenStack(server.url, inv),
      );
    else
      bursts.native = await measured('native (POST /v1/vms + job wait)', server, () =>
        viaNative(tenant, inv),
      );
  }
  console.log(`statuses the SDK's polls saw: ${polled}`);
  console.log(`openstacksdk ${sdk}; order ${runOrder.join(' then ')}`);
  for (const which of runOrder) print(bursts[which]!);
  const o = bursts.openstack!;
  const n = bursts.native!;
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
  console.log('\nOpenStack ÷ native:');
  console.log(`  wall ${ratio(o.wall, n.wall)}, rate ${ratio(o.ok / o.wall, n.ok / n.wall)}`);
  console.log(
    `  create request p50 ${ratio(o.request.p50, n.request.p50)}, p99 ${ratio(o.request.p99, n.request.p99)}`,
  );
  console.log(
    `  time to running p50 ${ratio(o.running.p50, n.running.p50)}, p99 ${ratio(o.running.p99, n.running.p99)}`,
  );
  console.log(`  node CPU per VM ${ratio(o.nodeCpuPerVm, n.nodeCpuPerVm)}`);
} finally {
  await server.stop();
}
