/**
 * npm run bench:cluster -- [--vms N] [--hosts H] [--concurrency C] [--kill-at F]
 *
 * The cost of clustering, measured in one run (docs/cluster.md): `bench:vm-create` against one
 * node, then the same against three nodes on one fresh database behind the shipped HAProxy
 * configuration (deploy/haproxy/haproxy.cfg) — both on this machine, so the figures compare.
 * With --kill-at F (e.g. 0.3) one of the three nodes is SIGKILLed once that fraction of the
 * creates has finished: the run then shows every create ended (Succeeded, or Failed
 * JOB_INTERRUPTED and rolled back, once the survivors fenced the dead node after its 15 s
 * dead-after), and vm-create's invariant check covers capacity and addresses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../src/db/embedded.js';
import { ADMIN_PASSWORD, flags, machine } from './lib.js';

const f = flags({
  vms: { type: 'string', default: '1000' },
  hosts: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '100' },
  'kill-at': { type: 'string' },
});
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const sizes = [
  '--vms',
  f.vms as string,
  '--hosts',
  f.hosts as string,
  '--concurrency',
  f.concurrency as string,
];

/** Runs bench/vm-create with `args`, its output on ours; resolves when it exits. */
function vmCreate(args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, ['dist/bench/vm-create.js', ...sizes, ...args], { stdio: 'inherit' });
  return new Promise((r) => child.on('exit', (code) => r(code)));
}

async function sql(url: string, text: string): Promise<pg.QueryResultRow[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}\n\n=== one node ===`);
  await vmCreate([]);

  console.log('\n=== three nodes behind HAProxy ===');
  const name = `nimbus_bench_cluster_${Date.now()}`;
  await sql(base, `create database ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  const databaseUrl = u.toString();
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      const args = ['dist/src/main.js', '--database-url', databaseUrl, '--port', String(port)];
      args.push(
        '--node-name',
        `bench-${i}`,
        '--no-demo',
        '--data-dir',
        join(dir, `n${i}`),
        '--log-level',
        'warn',
      );
      children.push(
        spawn(process.execPath, args, {
          env: { ...process.env, NIMBUS_ADMIN_PASSWORD: ADMIN_PASSWORD },
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
      );
      // one after the other: the first migrates the database
      await until(`node ${i}`, async () => (await fetch(`http://127.0.0.1:${port}/v1/ready`)).ok);
    }
    const lbPort = await freePort();
    const haproxy = spawn('haproxy', ['-db', '-f', 'deploy/haproxy/haproxy.cfg'], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin',
        NIMBUS_LB_BIND: `127.0.0.1:${lbPort}`,
        NIMBUS_NODE1: `127.0.0.1:${ports[0]}`,
        NIMBUS_NODE2: `127.0.0.1:${ports[1]}`,
        NIMBUS_NODE3: `127.0.0.1:${ports[2]}`,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(haproxy);
    const lb = `http://127.0.0.1:${lbPort}`;
    await until('HAProxy', async () => (await fetch(`${lb}/v1/health`)).ok);
    await new Promise((r) => setTimeout(r, 2500)); // every node's checks passed twice
    const run = vmCreate(['--url', lb, '--password', ADMIN_PASSWORD, '--database-url', databaseUrl]);
    const killAt = f['kill-at'] === undefined ? undefined : Number(f['kill-at']);
    if (killAt !== undefined) {
      const target = Math.ceil(killAt * Number(f.vms));
      await until(
        `${target} creates finished`,
        async () =>
          Number(
            (
              await sql(
                databaseUrl,
                `select count(*) as n from jobs where kind = 'vm.create' and state in ('Succeeded','Failed')`,
              )
            )[0]!.n,
          ) >= target,
        600_000,
      );
      children[2]!.kill('SIGKILL');
      console.log(`\n--- SIGKILL of node bench-2 after ${target} creates finished ---\n`);
    }
    await run;
    const nodes = await sql(
      databaseUrl,
      `select name, case when fenced_by is not null then 'Fenced' when stopped_at is not null then 'Stopped' else 'Running' end as state,
         (select count(*) from jobs j where j.owner_node = n.uuid and j.kind = 'vm.create') as creates
       from management_nodes n order by name`,
    );
    console.log(
      `nodes: ${nodes.map((n) => `${n.name} ${n.state} (${n.creates} creates finished there)`).join(', ')}`,
    );
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await sql(base, `drop database if exists ${name} with (force)`).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
