/**
 * Test-only: real nimbus-agent processes (the bundle, dist/nimbus-agent.mjs) each inside a
 * network namespace of the test's own ("host"), driven over HTTP with curl run in that namespace
 * (the agent's loopback is the namespace's). Everything is named with a random tag; `destroy()`
 * kills what the lab started by PID (agents, then the QEMUs their pidfiles name, after checking
 * the cmdline) and deletes every namespace whose name carries the tag.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const AGENT_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'nimbus-agent.mjs');

export function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (QEMU with TAPs in network namespaces)';
  for (const tool of [
    'qemu-system-x86_64',
    'qemu-img',
    'nsenter',
    'curl',
    'mkfs.vfat',
    'mcopy',
    'syslinux',
    'cpio',
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      return `${tool} is missing (apt-get install qemu-system-x86 qemu-utils util-linux curl dosfstools mtools syslinux syslinux-common cpio)`;
    }
  }
  if (!existsSync(AGENT_BUNDLE)) return `${AGENT_BUNDLE} is missing (node scripts/build.mjs)`;
  return false;
}

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export class Agent {
  pid = 0;
  readonly stateDir: string;
  readonly log: string;
  constructor(
    readonly lab: Lab,
    readonly port: number,
    readonly prefix: string,
    /** a directory the agent (and its QEMUs) see as an empty tmpfs: a host without shared storage */
    readonly privateDir?: string,
  ) {
    this.stateDir = join(lab.dir, `state-${prefix}`);
    this.log = join(lab.dir, `agent-${prefix}.log`);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const from = existsSync(this.log) ? readFileSync(this.log, 'utf8').length : 0;
    const out = openSync(this.log, 'a');
    const wrap =
      this.privateDir === undefined
        ? []
        : [
            'unshare',
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            'mount -t tmpfs tmpfs "$0" && exec "$@"',
            this.privateDir,
          ];
    const [cmd = 'nsenter', ...rest] = [
      ...wrap,
      'nsenter',
      `--net=/run/netns/${this.lab.ns}`,
      process.execPath,
      AGENT_BUNDLE,
      '--listen',
      this.address,
      '--state-dir',
      this.stateDir,
      '--secret-file',
      this.lab.secretFile,
      '--name-prefix',
      this.prefix,
      '--accel',
      'tcg',
      '--stop-timeout',
      '30',
    ];
    const child = spawn(cmd, rest, { stdio: ['ignore', out, out], detached: false });
    this.pid = child.pid ?? 0;
    child.unref();
    for (let i = 0; i < 100; i++) {
      if (readFileSync(this.log, 'utf8').slice(from).includes('nimbus-agent listening')) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent ${this.prefix} did not start:\n${readFileSync(this.log, 'utf8')}`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.pid > 0) {
      try {
        process.kill(this.pid, signal);
      } catch {}
    }
  }

  async call(command: string, body: unknown, opts: { secret?: string; raw?: string } = {}): Promise<Reply> {
    const data = opts.raw ?? JSON.stringify(body);
    const { stdout } = await run('nsenter', [
      `--net=/run/netns/${this.lab.ns}`,
      'curl',
      '-s',
      '-m',
      '600',
      '-X',
      'POST',
      '-H',
      `authorization: Bearer ${opts.secret ?? this.lab.secret}`,
      '-H',
      'content-type: application/json',
      '--data-binary',
      data,
      '-w',
      '\n%{http_code}',
      `http://${this.address}/v1/commands/${command}`,
    ]);
    const nl = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(nl + 1)), body: JSON.parse(stdout.slice(0, nl) || '{}') };
  }

  /** the command's response; throws with the error body when it is not 200 */
  async ok<T = Record<string, unknown>>(command: string, body: unknown): Promise<T> {
    const r = await this.call(command, body);
    if (r.status !== 200) throw new Error(`${command} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as T;
  }

  vmDir(uuid: string): string {
    return join(this.stateDir, 'vms', uuid);
  }

  qemuPid(uuid: string): number | undefined {
    const text = existsSync(join(this.vmDir(uuid), 'qemu.pid'))
      ? readFileSync(join(this.vmDir(uuid), 'qemu.pid'), 'utf8')
      : '';
    const pid = Number(text.trim());
    if (!pid) return undefined;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join(this.vmDir(uuid), 'qmp.sock'))
        ? pid
        : undefined;
    } catch {
      return undefined;
    }
  }

  serial(uuid: string): string {
    const path = join(this.vmDir(uuid), 'serial.log');
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** waits until the serial log, from character `from` on, matches */
  async waitSerial(uuid: string, re: RegExp, from = 0, timeoutMs = 180_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.serial(uuid).slice(from).match(re);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`serial log of ${uuid} never matched ${re}:\n${this.serial(uuid).slice(-2000)}`);
  }
}

export class Lab {
  readonly tag = randomBytes(3).toString('hex');
  readonly ns = `nva${this.tag}`;
  readonly dir = mkdtempSync(join(tmpdir(), `nimbus-agent-${this.tag}-`));
  readonly secret = randomBytes(16).toString('hex');
  readonly secretFile = join(this.dir, 'secret');
  readonly agents: Agent[] = [];

  constructor() {
    writeFileSync(this.secretFile, this.secret, { mode: 0o600 });
    mkdirSync(join(this.dir, 'disks'));
    sh('ip', ['netns', 'add', this.ns]);
    sh('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
  }

  agent(port: number, prefix: string, privateDir?: string): Agent {
    const a = new Agent(this, port, prefix, privateDir);
    this.agents.push(a);
    return a;
  }

  inNs(...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.ns, ...args]);
  }

  destroy(): void {
    for (const a of this.agents) a.kill();
    for (const a of this.agents) {
      const vms = existsSync(join(a.stateDir, 'vms')) ? readdirSync(join(a.stateDir, 'vms')) : [];
      for (const uuid of vms) {
        const pid = a.qemuPid(uuid);
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      }
    }
    const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const line of namespaces.split('\n')) {
      const name = line.trim().split(/\s+/)[0] ?? '';
      const ours = name === this.ns || this.agents.some((a) => name.startsWith(a.prefix));
      if (!ours || name === '') continue;
      const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
      for (const p of pids
        .split('\n')
        .map(Number)
        .filter((n) => n > 1)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
      spawnSync('ip', ['netns', 'del', name]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** whether `pid` is a live process (a zombie waiting for its parent to reap it is not) */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
