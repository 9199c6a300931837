/**
 * npm run bench:crash -- [--vms 1000] [--hosts 100] [--concurrency 100] [--kill-at 0.5]
 *   [--database embedded|external]
 *
 * A crash in the middle of a burst, timed: starts a node (on its own embedded PostgreSQL in a
 * fresh data directory — what `npm start` gives a user — or, with `--database external`, on a new
 * database of the PostgreSQL at DATABASE_URL), creates the hosts, an image and an offering, fires
 * the VM creates, and once `kill-at` of them have been accepted kills the node with SIGKILL. The
 * requests in flight at that instant get no answer, the rest are not sent. It restarts the node at
 * once with the same name and data directory (the embedded database left running by the dead
 * node is stopped and started again, as after a real crash), and records from the kill: when the
 * node is ready again, when every create job has ended (Succeeded or Failed), and when every
 * invariant holds (test/support/invariants.ts: capacity sums, nothing transitional, no job
 * running, addresses). Prints figures; never passes or fails on timing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDb } from '../src/db/pool.js';
import { invariantViolations } from '../test/support/invariants.js';
import { ADMIN_PASSWORD, Client, embeddedDatabase, flags, machine, spawnNode } from './lib.js';
import { loadAverage } from './proc-stats.js';
import { setup } from './vm-create-setup.js';

const f = flags({
  vms: { type: 'string', default: '1000' },
  hosts: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '100' },
  'kill-at': { type: 'string', default: '0.5' },
  database: { type: 'string', default: 'embedded' },
});
const N = Number(f.vms);
const H = Number(f.hosts);
const C = Number(f.concurrency);
const KILL_AT = Number(f['kill-at']);
if (!(KILL_AT > 0 && KILL_AT < 1))
  throw new Error(`--kill-at: a fraction between 0 and 1, got ${f['kill-at']}`);
if (f.database !== 'embedded' && f.database !== 'external')
  throw new Error(`--database: embedded or external, got ${f.database}`);
const embedded = f.database === 'embedded';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function externalDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `nimbus_crash_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-sigkill-bench-'));
  const external = embedded ? undefined : await externalDatabase();
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete env.DATABASE_URL;
  const args = [
    '--data-dir',
    dataDir,
    '--node-name',
    'sigkill-bench',
    ...(external ? ['--database-url', external.url] : []),
  ];
  let node = await spawnNode(args, env);
  try {
    const api = new Client(node.url);
    await api.login(ADMIN_PASSWORD);
    const inv = await setup(api, H, 0);
    console.log(`setup: ${H} hosts, local storage, image, offering in ${inv.seconds.toFixed(1)} s`);
    await Promise.all(Array.from({ length: C }, () => api.call('GET', '/v1/health')));

    // the burst, until kill-at of it has been accepted
    let sent = 0;
    let accepted = 0;
    let refused = 0;
    let unanswered = 0;
    let next = 0;
    let killedAt = 0;
    const killAfter = Math.ceil(N * KILL_AT);
    const start = Date.now();
    const kill = () => {
      if (killedAt) return;
      killedAt = Date.now();
      node.child.kill('SIGKILL');
    };
    await Promise.all(
      Array.from({ length: Math.min(C, N) }, async () => {
        for (let i = next++; i < N && !killedAt; i = next++) {
          sent++;
          try {
            const res = await api.call('POST', '/v1/vms', {
              name: `crash-vm-${i}`,
              imageUuid: inv.image,
              instanceOfferingUuid: inv.offering,
            });
            if (res.status !== 202) refused++;
            else if (++accepted >= killAfter) kill();
          } catch {
            unanswered++; // in flight when the node died
          }
        }
      }),
    );
    if (!killedAt) kill();
    const notSent = N - sent;
    await new Promise((r) => node.child.once('exit', r));

    // restart at once, same name and data directory
    node = await spawnNode(args, env);
    const readyAt = Date.now();
    const url = external ? external.url : embeddedDatabase(dataDir).url;
    const observer = openDb(url, { max: 2 });
    let endedAt = 0;
    let heldAt = 0;
    let violations: string[] = [];
    try {
      const deadline = Date.now() + 30 * 60_000;
      while (Date.now() < deadline) {
        if (!endedAt) {
          const open = await observer.db
            .selectFrom('jobs')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('state', 'in', ['Pending', 'Running'])
            .executeTakeFirstOrThrow();
          if (Number(open.n) === 0) endedAt = Date.now();
        }
        if (endedAt) {
          violations = await invariantViolations(observer.db);
          if (violations.length === 0) {
            heldAt = Date.now();
            break;
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const jobs = await observer.db
        .selectFrom('jobs')
        .select(['state', 'error'])
        .where('kind', '=', 'vm.create')
        .execute();
      const byOutcome = new Map<string, number>();
      for (const j of jobs) {
        const key =
          j.state === 'Succeeded'
            ? 'Succeeded'
            : `${j.state} ${(j.error as { code?: string } | null)?.code ?? ''}`.trim();
        byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
      }
      const running = await observer.db
        .selectFrom('vms')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('state', '=', 'Running')
        .executeTakeFirstOrThrow();
      console.log(`
machine:      ${machine()}
date:         ${new Date(start).toISOString()}, load average ${loadAverage()} (at the end)
command:      npm run bench:crash -- --vms ${N} --hosts ${H} --concurrency ${C} --kill-at ${KILL_AT} --database ${f.database}
database:     ${embedded ? 'embedded PostgreSQL (the dead node left it running; the restart stopped and restarted it)' : 'external PostgreSQL (DATABASE_URL)'}
before kill:  ${accepted} creates accepted in ${seconds(killedAt - start)}${refused ? `, ${refused} refused` : ''}; ${unanswered} in flight got no answer, ${notSent} not sent
jobs:         ${jobs.length} vm.create jobs in the database: ${[...byOutcome].map(([k, n]) => `${k} ×${n}`).join(', ')}
VMs Running:  ${running.n}
from the SIGKILL:
  ready again:          ${seconds(readyAt - killedAt)}
  every job ended:      ${endedAt ? seconds(endedAt - killedAt) : 'not within 30 min'}
  invariants all hold:  ${heldAt ? seconds(heldAt - killedAt) : `not within 30 min: ${violations.slice(0, 5).join('; ')}`}`);
    } finally {
      await observer.close();
    }
  } finally {
    node.child.kill('SIGINT');
    if (node.child.exitCode === null) await new Promise((r) => node.child.once('exit', r));
    await external?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
