/**
 * Benchmark plumbing: start a fresh server as a child process (or use --url), a minimal API
 * client, a bounded-concurrency runner, and latency percentiles. Benchmarks print figures; they
 * never pass or fail on timing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../src/db/embedded.js';

export const ADMIN_PASSWORD = 'bench-admin-password';
/** the server next to this build of the benchmarks (dist/src/main.js beside dist/bench/) */
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}`;
}

export function flags<T extends Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>(
  options: T,
) {
  return parseArgs({ options, allowPositionals: false }).values as unknown as Record<
    keyof T,
    string | boolean | undefined
  >;
}

export class Client {
  constructor(
    readonly url: string,
    public token = '',
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async login(password: string): Promise<void> {
    const res = await this.call('POST', '/v1/auth/login', { account: 'admin', password });
    if (res.status !== 200) throw new Error(`login failed: ${JSON.stringify(res.body)}`);
    this.token = res.body.token;
  }

  /** Submits and waits for the job; throws with the job's error when it fails. */
  async done(method: string, path: string, body?: unknown): Promise<any> {
    const res = await this.call(method, `${path}${path.includes('?') ? '&' : '?'}wait=true`, body);
    if (res.status >= 300 || res.body?.state !== 'Succeeded')
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

export interface Server {
  url: string;
  databaseUrl: string;
  /** the node's process id */
  pid: number;
  /** the embedded PostgreSQL's postmaster (embedded runs only) */
  postmasterPid?: number;
  /** the node's data directory (the embedded database lives under it) */
  dataDir: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** run the node on its own embedded PostgreSQL (what `npm start` gives a user), not DATABASE_URL */
  embedded?: boolean;
}

/** Spawns `dist/src/main.js` with these arguments and waits until /v1/ready answers 200. */
export async function spawnNode(
  args: string[],
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string; readyMs: number }> {
  const port = await freePort();
  const t0 = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, MAIN, '--port', String(port), '--no-demo', '--log-level', 'warn', ...args],
    { env: { ...env, NIMBUS_ADMIN_PASSWORD: ADMIN_PASSWORD }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (let i = 0; ; i++) {
    try {
      // ready, not merely alive: the node has recovered and warmed its connections (docs/api.md)
      if ((await fetch(`${url}/v1/ready`)).ok) break;
    } catch {}
    if (exited) throw new Error('the server exited while starting');
    if (i > 1200) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, readyMs: Date.now() - t0 };
}

/** The embedded database's URL, from the files the node keeps in its data directory. */
export function embeddedDatabase(dataDir: string): { url: string; postmasterPid: number } {
  const pidFile = readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
  const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pidFile[3]}/postgres`,
    postmasterPid: Number(pidFile[0]),
  };
}

/**
 * A server process on a fresh database: a new database on the PostgreSQL at DATABASE_URL, or
 * (`embedded`) the node's own embedded PostgreSQL in a fresh data directory. `nodeArgs` go to
 * node itself (e.g. `--cpu-prof` to profile the server).
 */
export async function startServer(
  extraArgs: string[] = [],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  opts: ServerOptions = {},
): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-'));
  const childEnv: Record<string, string> = { ...(process.env as Record<string, string>), ...env };
  if (opts.embedded) {
    delete childEnv.DATABASE_URL;
    const node = await spawnNode(['--data-dir', dataDir, ...extraArgs], childEnv, nodeArgs);
    const db = embeddedDatabase(dataDir);
    return {
      url: node.url,
      databaseUrl: db.url,
      pid: node.child.pid ?? 0,
      postmasterPid: db.postmasterPid,
      dataDir,
      async stop() {
        node.child.kill('SIGINT'); // the node stops its embedded database last
        if (node.child.exitCode === null) await new Promise((r) => node.child.once('exit', r));
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `nimbus_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  const databaseUrl = u.toString();
  const node = await spawnNode(
    ['--database-url', databaseUrl, '--data-dir', dataDir, ...extraArgs],
    childEnv,
    nodeArgs,
  );
  return {
    url: node.url,
    databaseUrl,
    pid: node.child.pid ?? 0,
    dataDir,
    async stop() {
      node.child.kill('SIGINT');
      if (node.child.exitCode === null) await new Promise((r) => node.child.once('exit', r));
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `count` tasks with at most `concurrency` in flight; returns each task's result in order. */
export async function pool<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    for (let i = next++; i < count; i = next++) results[i] = await task(i);
  });
  await Promise.all(workers);
  return results;
}

export function percentiles(samples: number[]): { p50: number; p95: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
  return { p50: at(50), p95: at(95), p99: at(99), max: s[s.length - 1] ?? 0 };
}

export const ms = (n: number) => `${n.toFixed(0)} ms`;
