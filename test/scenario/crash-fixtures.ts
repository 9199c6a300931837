/**
 * Crash scenarios' harness (crash-recovery and crash-network): a real management node as a
 * child process (`node dist/src/main.js …`) on its own test database, killed with SIGKILL and
 * restarted with the same node name; an observer connection to read the database straight;
 * waiters and job readers.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/embedded.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import type { FlowJournal } from '../../src/db/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
export const CRASH_PASSWORD = 'crash-test-admin-password';
export const WAIT_MS = 60_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 150 ms until it returns a value other than undefined/false; fails after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
  diagnostics: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      assert.fail(
        `gave up after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}${diagnostics()}`,
      );
    }
    await sleep(150);
  }
}

/** One `node dist/src/main.js …` child; output is kept (tail) for failure messages. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private output = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly args: string[],
    readonly url: string,
    extraEnv: Record<string, string> = {},
  ) {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, NIMBUS_ADMIN_PASSWORD: CRASH_PASSWORD };
    // the test runner's DATABASE_URL must not leak in: the node gets --database-url, or runs
    // its embedded PostgreSQL without one
    delete env.DATABASE_URL;
    this.child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-8000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  tail(): string {
    return `\n--- server output (tail) ---\n${this.output}`;
  }

  /** Waits until /v1/health answers 200; fails at once if the process exits. */
  async healthy(timeoutMs = WAIT_MS): Promise<void> {
    await waitUntil(
      `${this.url}/v1/health`,
      async () => {
        if (!this.running) assert.fail(`the server exited (${JSON.stringify(this.exit)})${this.tail()}`);
        const res = await fetch(`${this.url}/v1/health`).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
      () => this.tail(),
    );
  }

  /** Waits until /v1/ready answers 200 (migrated, recovered, not draining); fails if the process exits. */
  async ready(timeoutMs = WAIT_MS): Promise<void> {
    await waitUntil(
      `${this.url}/v1/ready`,
      async () => {
        if (!this.running) assert.fail(`the server exited (${JSON.stringify(this.exit)})${this.tail()}`);
        const res = await fetch(`${this.url}/v1/ready`).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
      () => this.tail(),
    );
  }

  async killHard(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGINT; fails unless it exits with 0 within the bound; the exit code. */
  async interrupt(timeoutMs = WAIT_MS): Promise<number | null> {
    this.child.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!exit) assert.fail(`the server did not exit within ${timeoutMs} ms of SIGINT${this.tail()}`);
    if (exit.code !== 0) assert.fail(`exit ${JSON.stringify(exit)} after SIGINT${this.tail()}`);
    return exit.code;
  }
}

export interface JobRow {
  uuid: string;
  kind: string;
  state: string;
  resourceUuid: string | null;
  error: { code?: string; message?: string; details?: Record<string, unknown> } | null;
  flow: FlowJournal | null;
  ownerNode: string | null;
}

export async function jobsOf(db: DbHandle): Promise<JobRow[]> {
  return (await db.db
    .selectFrom('jobs')
    .select(['uuid', 'kind', 'state', 'resourceUuid', 'error', 'flow', 'ownerNode'])
    .execute()) as JobRow[];
}

export async function unfinished(db: DbHandle): Promise<JobRow[]> {
  return (await jobsOf(db)).filter((j) => j.state === 'Pending' || j.state === 'Running');
}

/** Counts of jobs by kind, state and step in flight, for diagnostics. */
export function summary(rows: JobRow[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const j of rows) {
    const key = `${j.kind} ${j.state}${j.flow?.current ? ` @${j.flow.current}` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** After a SIGKILL the server's backends go away once PostgreSQL sees the sockets close. */
export async function noBackendsOf(observer: DbHandle, database: string): Promise<void> {
  await waitUntil('the killed node’s database sessions to end', async () => {
    const { rows } = await observer.pool.query(
      `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name like 'nimbus node %'`,
      [database],
    );
    return rows[0].n === 0;
  });
}

export interface CrashNode {
  db: TestDatabase;
  /** the test's own connection (application name crash-test-observer) */
  observer: DbHandle;
  url: string;
  /** starts a node process (always the same name, database, port and data directory) */
  start(extraEnv?: Record<string, string>): ServerProcess;
}

/**
 * A node to crash on a fresh test database; `cleanup()` (call it in `after`) kills every process
 * started and drops what was made.
 */
export function crashHarness(): { setup(nodeName: string): Promise<CrashNode>; cleanup(): Promise<void> } {
  const servers: ServerProcess[] = [];
  const databases: TestDatabase[] = [];
  const observers: DbHandle[] = [];
  const dirs: string[] = [];
  return {
    async setup(nodeName) {
      const dir = mkdtempSync(join(tmpdir(), 'nimbus-crash-'));
      dirs.push(dir);
      const db = await createTestDatabase({ max: 1 });
      databases.push(db);
      const observer = openDb(db.url, { max: 3, applicationName: 'crash-test-observer' });
      observers.push(observer);
      const port = await freePort();
      const args = [
        ...['--database-url', db.url, '--data-dir', dir, '--host', '127.0.0.1', '--port', String(port)],
        ...['--node-name', nodeName, '--no-demo', '--log-file', join(dir, 'nimbus.log')],
      ];
      const url = `http://127.0.0.1:${port}`;
      return {
        db,
        observer,
        url,
        start(extraEnv: Record<string, string> = {}) {
          const s = new ServerProcess(args, url, extraEnv);
          servers.push(s);
          return s;
        },
      };
    },
    async cleanup() {
      for (const s of servers) await s.killHard().catch(() => {});
      for (const o of observers) await o.close().catch(() => {});
      for (const d of databases) await d.drop().catch(() => {});
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a process is still there (signal 0 tests without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
