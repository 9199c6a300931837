/**
 * Benchmark plumbing: start a fresh server as a child process (or use --url), a minimal API
 * client, a bounded-concurrency runner, and latency percentiles. Benchmarks print figures; they
 * never pass or fail on timing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../src/db/embedded.js';

export const ADMIN_PASSWORD = 'bench-admin-password';

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
  stop(): Promise<void>;
}

/**
 * A fresh database on the PostgreSQL at DATABASE_URL and a server process on it; `nodeArgs` go to
 * node itself (e.g. `--cpu-prof` to profile the server).
 */
export async function startServer(
  extraArgs: string[] = [],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Server> {
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `nimbus_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  const databaseUrl = u.toString();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeArgs,
      'dist/src/main.js',
      '--database-url',
      databaseUrl,
      '--port',
      String(port),
      '--no-demo',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    {
      env: { ...process.env, ...env, NIMBUS_ADMIN_PASSWORD: ADMIN_PASSWORD },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v1/health`)).ok) break;
    } catch {}
    if (i > 300) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    databaseUrl,
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
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
