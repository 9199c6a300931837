/**
 * npm run bench:vm-create -- [--vms N --hosts H | --series [--sizes 1000,10000,100000]]
 *   [--databases external,embedded] [--concurrency C] [--nics K] [--cold-connections]
 *   [--url U --password P --database-url D] [--node-args="--cpu-prof --cpu-prof-dir=prof"]
 *
 * For each database and size: starts a fresh server — on a new database of the PostgreSQL at
 * DATABASE_URL (`external`), or on its own embedded PostgreSQL in a fresh data directory
 * (`embedded`, what `npm start` gives a user) — waits until it reports ready, creates H simulated
 * hosts (H = N/10 in a series) with local storage, an image and an offering (with --nics K, K flat
 * L3s too), measures the commit-rate ceiling of that PostgreSQL (commit-ceiling.ts), fires N VM
 * creates through the HTTP API with C in flight, waits for every job and prints: wall time,
 * VMs/s, accept p50/p99 (overall and for the calls sent in the first second), completion
 * p50/p99, the node's peak RSS, CPU seconds per VM of the node and of PostgreSQL (/proc),
 * statements (counted by the node) and commits (pg_stat_database) per VM, the load average, and
 * whether the invariants hold. A series ends with one table of every run.
 *
 * Connections: before the timed burst the client opens its C keep-alive HTTP connections (one
 * GET /v1/health on each), as long-lived clients or a load balancer in front of a management
 * node hold them, so accept latency measures the API, not TCP set-up. --cold-connections skips
 * that. --url targets a running server instead (one size; --database-url for the figures that
 * read the database; no /proc figures for PostgreSQL then).
 */
import { ADMIN_PASSWORD, Client, flags, machine, ms, type Server, startServer } from './lib.js';
import { type BurstResult, runBurst } from './vm-create-run.js';
import { setup } from './vm-create-setup.js';

const f = flags({
  vms: { type: 'string', default: '1000' },
  hosts: { type: 'string' },
  series: { type: 'boolean', default: false },
  sizes: { type: 'string', default: '1000,10000,100000' },
  databases: { type: 'string' },
  concurrency: { type: 'string', default: '500' },
  nics: { type: 'string', default: '0' },
  'pool-size': { type: 'string', default: '8' },
  url: { type: 'string' },
  password: { type: 'string' },
  'database-url': { type: 'string' },
  'node-args': { type: 'string' },
  'cold-connections': { type: 'boolean', default: false },
});

const positive = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: a positive whole number, got ${value}`);
  return n;
};
const sizes = f.series
  ? (f.sizes as string).split(',').map((s) => positive('sizes', s.trim()))
  : [positive('vms', f.vms as string)];
const databases = ((f.databases as string | undefined) ?? (f.series ? 'external,embedded' : 'external'))
  .split(',')
  .map((d) => d.trim());
for (const d of databases)
  if (d !== 'external' && d !== 'embedded') throw new Error(`--databases: external or embedded, got ${d}`);
const C = positive('concurrency', f.concurrency as string);
const K = Number(f.nics);
const poolSize = positive('pool-size', f['pool-size'] as string);

function print(database: string, n: number, h: number, r: BurstResult): void {
  const p = (x: { p50: number; p99: number }) => `p50 ${ms(x.p50)}  p99 ${ms(x.p99)}`;
  console.log(`
── ${n} VMs on ${h} hosts, ${database} PostgreSQL, ${Math.min(C, n)} in flight
load average: ${r.load.before} before, ${r.load.after} after
accepted:     ${r.accepted} of ${n} (refused ${r.refused}) in ${r.acceptedAfter.toFixed(1)} s
succeeded:    ${r.succeeded}    failed: ${r.failed} ${r.failures}
wall time:    ${r.wall.toFixed(1)} s    → ${r.vmsPerSecond.toFixed(0)} VMs/s
accept:       ${p(r.accept)}  max ${ms(r.accept.max)};  first second: ${p(r.acceptFirstSecond)}
accept > 1s:  ${r.slowBySecond}
completion:   ${p(r.completion)}  max ${ms(r.completion.max)}
node:         peak RSS ${r.nodePeakRssMiB.toFixed(0)} MiB (${r.nodeRssAfterMiB.toFixed(0)} MiB after), ${(r.nodeCpuPerVm * 1000).toFixed(1)} ms CPU per VM
postgres:     ${(r.pgCpuPerVm * 1000).toFixed(1)} ms CPU per VM${database === 'external' ? " (this database's backends)" : ' (the whole embedded server)'}
per VM:       ${r.statementsPerVm.toFixed(1)} statements sent by the node, ${r.commitsPerVm.toFixed(1)} transactions committed (reads included), ${r.writesPerVm.toFixed(1)} write transactions${database === 'external' ? ' (server-wide: other users of this PostgreSQL count too)' : ''}
commits/s:    ${r.commitsPerSecond.toFixed(0)} write commits/s achieved; ceiling ${r.ceiling.perSecond.toFixed(0)} (one-row INSERT per commit on ${r.ceiling.connections} connections, same PostgreSQL, just before) → ${((100 * r.commitsPerSecond) / r.ceiling.perSecond).toFixed(0)} % of it; at ${r.writesPerVm.toFixed(1)} write commits per VM the ceiling is ${(r.ceiling.perSecond / r.writesPerVm).toFixed(0)} VMs/s
invariants:   ${r.invariants}`);
}

function table(rows: Array<{ database: string; n: number; r: BurstResult }>): void {
  console.log(`
| database | VMs | wall | VMs/s | accept p50 / p99 (first second p99) | completion p50 / p99 | node peak RSS | node / PG CPU per VM | statements / transactions / writes per VM | write commits/s: achieved / ceiling (→ VMs/s) | load before → after |
|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const { database, n, r } of rows)
    console.log(
      `| ${database} | ${n.toLocaleString('en')} | ${r.wall.toFixed(1)} s | ${r.vmsPerSecond.toFixed(0)} | ${r.accept.p50.toFixed(0)} / ${r.accept.p99.toFixed(0)} ms (${r.acceptFirstSecond.p99.toFixed(0)}) | ${(r.completion.p50 / 1000).toFixed(1)} / ${(r.completion.p99 / 1000).toFixed(1)} s | ${r.nodePeakRssMiB.toFixed(0)} MiB | ${(r.nodeCpuPerVm * 1000).toFixed(1)} / ${(r.pgCpuPerVm * 1000).toFixed(1)} ms | ${r.statementsPerVm.toFixed(1)} / ${r.commitsPerVm.toFixed(1)} / ${r.writesPerVm.toFixed(1)} | ${r.commitsPerSecond.toFixed(0)} / ${r.ceiling.perSecond.toFixed(0)} (${(r.ceiling.perSecond / r.writesPerVm).toFixed(0)}) | ${r.load.before.split(' ')[0]} → ${r.load.after.split(' ')[0]} |`,
    );
}

async function one(database: string, n: number, h: number): Promise<BurstResult> {
  const nodeArgs = ((f['node-args'] as string | undefined) ?? '').split(' ').filter(Boolean);
  let server: Server | undefined;
  if (f.url) {
    if (!f['database-url']) throw new Error('--url needs --database-url (the figures read the database)');
    server = undefined;
  } else {
    server = await startServer(['--db-pool-size', String(poolSize)], {}, nodeArgs, {
      embedded: database === 'embedded',
    });
  }
  const target: Server = server ?? {
    url: f.url as string,
    databaseUrl: f['database-url'] as string,
    pid: 0,
    dataDir: '',
    stop: async () => {},
  };
  const api = new Client(target.url);
  await api.login((f.password as string | undefined) ?? ADMIN_PASSWORD);
  try {
    const inv = await setup(api, h, K);
    console.log(
      `\nsetup (${database}): ${h} hosts, local storage, image, offering${K ? `, ${K} flat L3(s)` : ''} in ${inv.seconds.toFixed(1)} s; firing ${n} creates …`,
    );
    const r = await runBurst(target, api, inv, {
      vms: n,
      concurrency: Math.min(C, n),
      nics: K,
      coldConnections: f['cold-connections'] as boolean,
      poolSize,
    });
    print(database, n, h, r);
    return r;
  } finally {
    await server?.stop();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2).join(' ');
  console.log(
    `machine: ${machine()}\ndate:    ${new Date().toISOString()}\ncommand: npm run bench:vm-create -- ${argv}`,
  );
  const rows: Array<{ database: string; n: number; r: BurstResult }> = [];
  for (const database of databases)
    for (const n of sizes) {
      const h =
        f.series || f.hosts === undefined
          ? Math.max(1, Math.round(n / 10))
          : positive('hosts', f.hosts as string);
      rows.push({ database, n, r: await one(database, n, h) });
    }
  table(rows);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
