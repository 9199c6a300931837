/**
 * Ctrl-C of `npm start`, in a loop (issue 8, item 2): the node runs with its embedded PostgreSQL,
 * in a process group of its own as under a terminal, and SIGINT goes to the whole group — after
 * it is ready, while it creates the demo environment, and while it is still starting. Every time
 * it exits 0 after printing its final line, and no PostgreSQL is left for its data directory
 * (the postmaster of postmaster.pid is gone, and no process runs `postgres -D <dir>`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/embedded.js';
import { CRASH_PASSWORD, isAlive, sleep, waitUntil } from './crash-fixtures.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const ROUNDS = 6;

const dir = mkdtempSync(join(tmpdir(), 'nimbus-sigint-'));
const pgDir = join(dir, 'pg');
const started: number[] = [];

/** postgres processes whose command line names this data directory (read from /proc). */
function postgresOf(dataDir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('postgres') && cmd.includes(dataDir)) out.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

const postmaster = () =>
  existsSync(join(pgDir, 'postmaster.pid'))
    ? Number.parseInt(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10)
    : undefined;

after(async () => {
  // nothing may outlive the test, whatever failed: the node groups, then their database
  for (const pid of started) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
  for (const pid of postgresOf(pgDir)) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {}
  }
  for (let i = 0; i < 100 && postgresOf(pgDir).length > 0; i++) await sleep(100);
  rmSync(dir, { recursive: true, force: true });
});

test(`Ctrl-C of the whole process group, ${ROUNDS} times: exit 0, the final line, no PostgreSQL left`, async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  for (let round = 0; round < ROUNDS; round++) {
    const env: NodeJS.ProcessEnv = { ...process.env, NIMBUS_ADMIN_PASSWORD: CRASH_PASSWORD };
    delete env.DATABASE_URL; // the embedded database
    // its own process group, as a shell gives a foreground job; the signal goes to the group
    const child = spawn(process.execPath, [MAIN, '--data-dir', dir, '--port', String(port)], {
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child.pid!);
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const moment = ['ready', 'healthy', 'starting'][round % 3]!;
    let pgPid: number | undefined;
    if (moment === 'starting') {
      // mid-start (the first line says Ctrl-C is handled): the database may or may not be up yet
      await waitUntil(
        `the first line (round ${round})`,
        async () => /starting \(embedded PostgreSQL/.test(output),
        120_000,
        () => `\n${output.slice(-3000)}`,
      );
      await sleep(round === 2 ? 1500 : 300);
    } else {
      const path = moment === 'ready' ? '/v1/ready' : '/v1/health';
      await waitUntil(
        `${path} (round ${round})`,
        async () => (await fetch(`${url}${path}`).catch(() => undefined))?.status === 200,
        180_000,
        () => `\n${output.slice(-3000)}`,
      );
      pgPid = postmaster();
      assert.ok(pgPid && isAlive(pgPid), 'the embedded PostgreSQL runs');
    }
    process.kill(-child.pid!, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 90_000);
      }),
    ]);
    clearTimeout(timer);
    assert.ok(exit, `round ${round} (${moment}): exited within 90 s of SIGINT\n${output.slice(-3000)}`);
    t.diagnostic(`round ${round} (${moment}): exit ${JSON.stringify(exit)}`);
    assert.equal(exit.code, 0, `round ${round} (${moment}): exit code 0\n${output.slice(-3000)}`);
    assert.match(output, /SIGINT: stopping/, `round ${round}: the stop was announced`);
    assert.match(
      output,
      /\nstopped\.\n/,
      `round ${round}: the final line was printed\n${output.slice(-3000)}`,
    );
    assert.doesNotMatch(output, /Unhandled 'error' event|nimbus failed to start/, `round ${round}: no crash`);
    const left = postmaster();
    if (pgPid) assert.ok(!isAlive(pgPid), `round ${round}: the postmaster ${pgPid} stopped`);
    if (left) assert.ok(!isAlive(left), `round ${round}: the postmaster of postmaster.pid (${left}) stopped`);
    assert.deepEqual(postgresOf(pgDir), [], `round ${round}: no postgres process for the data directory`);
  }
});
