/**
 * Test-only: the real nimbus-agent (the bundle, dist/nimbus-agent.mjs) inside a host namespace of
 * a Lab (harness.ts), started with `nsenter --net` as a test host runs it, driven over HTTP with
 * curl run in that namespace. `stop()` is a SIGTERM (guests and routers stay, as on a real host).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipReason, trySh } from './harness.js';

export const BUNDLE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'nimbus-agent.mjs',
);
/** why a test of the agent bundle cannot run here, or undefined */
export const bundleSkipReason = (): string | undefined =>
  skipReason() ?? (existsSync(BUNDLE) ? undefined : `no agent bundle at ${BUNDLE} (node scripts/build.mjs)`);

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; reason: string; message: string } };
}

export class HttpAgent {
  private child: ChildProcess | undefined;
  readonly port = 20000 + Math.floor(Math.random() * 20000);
  readonly secret = randomBytes(16).toString('hex');
  readonly log: string[] = [];

  constructor(
    readonly hostNs: string,
    readonly dir: string,
    readonly namePrefix: string,
  ) {
    writeFileSync(join(dir, 'secret'), this.secret, { mode: 0o600 });
  }

  async start(): Promise<void> {
    this.log.length = 0;
    this.child = spawn('nsenter', [
      `--net=/run/netns/${this.hostNs}`,
      process.execPath,
      BUNDLE,
      '--listen',
      `127.0.0.1:${this.port}`,
      '--state-dir',
      join(this.dir, 'state'),
      '--secret-file',
      join(this.dir, 'secret'),
      '--name-prefix',
      this.namePrefix,
      '--vtep-ip',
      '10.250.5.1',
    ]);
    this.child.stdout?.on('data', (d: Buffer) => this.log.push(d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => this.log.push(d.toString()));
    for (let i = 0; i < 100; i++) {
      if (this.log.join('').includes('nimbus-agent listening')) return;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent did not start: ${this.log.join('')}`);
  }

  send(command: string, request: unknown): HttpAnswer {
    const r = trySh('ip', [
      'netns',
      'exec',
      this.hostNs,
      'curl',
      '-s',
      '-m',
      '60',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      '-H',
      `Authorization: Bearer ${this.secret}`,
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify(request),
      `http://127.0.0.1:${this.port}/v1/commands/${command}`,
    ]);
    const nl = r.out.lastIndexOf('\n');
    return { status: Number(r.out.slice(nl + 1)), body: JSON.parse(r.out.slice(0, nl) || '{}') };
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
}
