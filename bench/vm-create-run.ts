/**
 * One vm-create burst on a running server, measured: N creates with C in flight, then every job
 * waited for; what it cost the node and PostgreSQL (from /proc), statements and commits per VM,
 * the commit-rate ceiling of the same PostgreSQL measured just before, and the invariants.
 */
import pg from 'pg';
import { measureCommitCeiling } from './commit-ceiling.js';
import { type Client, percentiles, pool, type Server } from './lib.js';
import { BackendCpu, cpuSeconds, loadAverage, peakRssMiB, rssMiB, serverCpuSeconds } from './proc-stats.js';
import type { Inventory } from './vm-create-setup.js';

export interface BurstOptions {
  vms: number;
  concurrency: number;
  /** NICs per VM (L3s in the inventory) */
  nics: number;
  coldConnections: boolean;
  /** pool size of the node: the ceiling probe uses as many connections */
  poolSize: number;
}

export interface BurstResult {
  accepted: number;
  refused: number;
  acceptedAfter: number;
  succeeded: number;
  failed: number;
  failures: string;
  wall: number;
  vmsPerSecond: number;
  accept: ReturnType<typeof percentiles>;
  /** accept latency of the calls sent in the burst's first second */
  acceptFirstSecond: ReturnType<typeof percentiles>;
  slowBySecond: string;
  completion: ReturnType<typeof percentiles>;
  nodePeakRssMiB: number;
  nodeRssAfterMiB: number;
  nodeCpuPerVm: number;
  pgCpuPerVm: number;
  statementsPerVm: number;
  /** transactions committed in the database, read-only ones included */
  commitsPerVm: number;
  /** write transactions (transaction ids), server-wide */
  writesPerVm: number;
  /** write transactions per second of wall time */
  commitsPerSecond: number;
  ceiling: { perSecond: number; connections: number };
  load: { before: string; after: string };
  invariants: string;
}

/** `12@3s 40@4s`: how many of the times fall in each whole second */
function bySecond(times: number[]): string {
  const counts = new Map<number, number>();
  for (const t of times) counts.set(Math.floor(t), (counts.get(Math.floor(t)) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${n}@${s}s`)
    .join(' ');
}

async function statementsSent(api: Client): Promise<number> {
  const res = await fetch(`${api.url}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith('nimbus_db_statements_total '));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

/**
 * Transactions committed in this database (pg_stat_database: read-only ones too), and write
 * transactions anywhere on the server (transaction ids handed out: only a write takes one).
 */
async function commits(db: pg.Client): Promise<{ all: number; writes: number }> {
  const r = await db.query<{ n: string; xid: string }>(
    `select xact_commit::text as n, pg_current_xact_id()::text as xid
       from pg_stat_database where datname = current_database()`,
  );
  return { all: Number(r.rows[0]?.n ?? Number.NaN), writes: Number(r.rows[0]?.xid ?? Number.NaN) };
}

/** CPU seconds of PostgreSQL: the embedded server's whole session, or this database's backends. */
function postgresCpu(
  server: Server,
  db: pg.Client,
): { stop(): Promise<number> } & { start(): Promise<void> } {
  if (server.postmasterPid) {
    const pid = server.postmasterPid;
    let before = 0;
    return {
      start: async () => {
        before = serverCpuSeconds(pid);
      },
      stop: async () => serverCpuSeconds(pid) - before,
    };
  }
  return new BackendCpu(db, new URL(server.databaseUrl).pathname.slice(1));
}

export async function runBurst(
  server: Server,
  api: Client,
  inv: Inventory,
  o: BurstOptions,
): Promise<BurstResult> {
  const db = new pg.Client({ connectionString: server.databaseUrl });
  await db.connect();
  try {
    // the reference, on the same PostgreSQL, minutes (not hours) from the burst
    const ceiling = await measureCommitCeiling(server.databaseUrl, o.poolSize, 5);
    if (!o.coldConnections) await pool(o.concurrency, o.concurrency, () => api.call('GET', '/v1/health'));
    const loadBefore = loadAverage();
    const pgCpu = postgresCpu(server, db);
    await pgCpu.start();
    const nodeCpu0 = cpuSeconds(server.pid);
    const statements0 = await statementsSent(api);
    const commits0 = await commits(db);

    const accept: number[] = [];
    const firstSecond: number[] = [];
    const slow: number[] = []; // when (s after the first call) each call slower than 1 s was sent
    let accepted = 0;
    let refused = 0;
    const start = Date.now();
    const t0 = performance.now();
    await pool(o.vms, o.concurrency, async (i) => {
      const t = performance.now();
      const res = await api.call('POST', '/v1/vms', {
        name: `bench-vm-${i}`,
        imageUuid: inv.image,
        instanceOfferingUuid: inv.offering,
        ...(o.nics ? { l3NetworkUuids: inv.l3s } : {}),
      });
      const took = performance.now() - t;
      accept.push(took);
      if (t - t0 < 1000) firstSecond.push(took);
      if (took > 1000) slow.push((t - t0) / 1000);
      if (res.status === 202) accepted++;
      else if (++refused <= 3) console.error(`refused: ${res.status} ${JSON.stringify(res.body)}`);
    });
    const acceptedAt = Date.now();
    for (;;) {
      const open = await db.query<{ n: number }>(
        `select count(*)::int as n from jobs where kind = 'vm.create' and state in ('Pending', 'Running')`,
      );
      if (open.rows[0]?.n === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const wall = (Date.now() - start) / 1000;
    const nodeCpu = cpuSeconds(server.pid) - nodeCpu0;
    const statements = (await statementsSent(api)) - statements0;
    await new Promise((r) => setTimeout(r, 1200)); // backends report their counts at most every second
    const commits1 = await commits(db);
    const committed = commits1.all - commits0.all;
    const writes = commits1.writes - commits0.writes;
    const postgres = await pgCpu.stop();
    const loadAfter = loadAverage();

    const rows = (
      await db.query<{ state: string; ms: number }>(
        `select state, extract(epoch from (finished_at - created_at)) * 1000 as ms from jobs where kind = 'vm.create'`,
      )
    ).rows;
    const ok = rows.filter((r) => r.state === 'Succeeded').length;
    const failures = await db.query<{ code: string; n: number }>(
      `select error->>'code' as code, count(*)::int as n from jobs where kind = 'vm.create' and state <> 'Succeeded' group by 1`,
    );
    return {
      accepted,
      refused,
      acceptedAfter: (acceptedAt - start) / 1000,
      succeeded: ok,
      failed: rows.length - ok,
      failures: failures.rows.map((r) => `${r.code}×${r.n}`).join(' '),
      wall,
      vmsPerSecond: ok / wall,
      accept: percentiles(accept),
      acceptFirstSecond: percentiles(firstSecond),
      slowBySecond: slow.length ? `${slow.length} calls, by second sent: ${bySecond(slow)}` : '0 calls',
      completion: percentiles(rows.map((r) => Number(r.ms))),
      nodePeakRssMiB: peakRssMiB(server.pid),
      nodeRssAfterMiB: rssMiB(server.pid),
      nodeCpuPerVm: nodeCpu / o.vms,
      pgCpuPerVm: postgres / o.vms,
      statementsPerVm: statements / o.vms,
      commitsPerVm: committed / o.vms,
      writesPerVm: writes / o.vms,
      commitsPerSecond: writes / wall,
      ceiling: { perSecond: ceiling.perSecond, connections: ceiling.connections },
      load: { before: loadBefore, after: loadAfter },
      invariants: await invariants(server.databaseUrl, o.nics > 0),
    };
  } finally {
    await db.end();
  }
}

async function invariants(databaseUrl: string, nics: boolean): Promise<string> {
  const { assertInvariants } = await import('../test/support/invariants.js');
  const { openDb } = await import('../src/db/pool.js');
  const h = openDb(databaseUrl, { max: 2 });
  try {
    await assertInvariants(h.db);
    return `all hold (host and storage capacity = sum of VMs/volumes, no transitional state, no running job${nics ? '; no duplicate IP, every NIC holds its address, NICs on their hosts' : ''})`;
  } catch (err) {
    process.exitCode = 1;
    return `VIOLATED: ${(err as Error).message}`;
  } finally {
    await h.close();
  }
}
