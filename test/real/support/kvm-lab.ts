/**
 * Test-only: a small data centre on this machine for the end-to-end tests of real hosts.
 *
 *   root namespace (the management node, this process) ── veth ──┐
 *                                                               underlay ns: bridge, 100.64.<n>.0/24
 *   host ns h1 (eth0 .1, nimbus-agent on :7070, VTEP .1) ── veth ──┤
 *   host ns h2 (eth0 .2, …)                               ── veth ──┘
 *   public ns: bridge, 198.18.<n>.0/24 (.250 = the outside world), one veth `pub0` into each host ns
 *
 * Every name carries a random tag; `destroy()` (call it in t.after / finally) kills what the lab
 * started by PID — the agents, then every process left in a namespace the lab or its agents made
 * (QEMU, dnsmasq: children of our agents) — and deletes those namespaces and the root veth.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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

export const AGENT_BUNDLE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'nimbus-agent.mjs',
);

/** why the real tests cannot run here, or false */
export function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, QEMU, TAPs)';
  for (const tool of [
    'qemu-system-x86_64',
    'qemu-img',
    'ip',
    'nsenter',
    'nft',
    'dnsmasq',
    'curl',
    'busybox',
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing`;
  }
  if (!existsSync(AGENT_BUNDLE)) return `${AGENT_BUNDLE} is missing (node scripts/build.mjs)`;
  return false;
}

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0 && !opts.allowFail)
    throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout ?? '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a free /24 of 100.64.0.0/10 (and 198.18.0.0/15) the root namespace has no route into */
function freeOctet(): number {
  const routes = sh('ip', ['-4', 'route', 'show']);
  for (let i = 0; i < 50; i++) {
    const n = 1 + Math.floor(Math.random() * 250);
    if (!routes.includes(`100.64.${n}.`) && !routes.includes(`100.65.${n}.`)) return n;
  }
  throw new Error('no free 100.64.x.0/24 found');
}

export class LabHost {
  child: ChildProcess | undefined;
  readonly stateDir: string;
  readonly logFile: string;

  constructor(
    readonly lab: KvmLab,
    readonly index: number,
    readonly ns: string,
    /** name prefix of everything its agent makes (namespaces, taps, bridges it names itself) */
    readonly prefix: string,
    readonly ip: string,
    readonly port: number,
  ) {
    this.stateDir = join(lab.dir, `state-${prefix}`);
    this.logFile = join(lab.dir, `agent-${prefix}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async startAgent(extra: string[] = []): Promise<void> {
    const out = openSync(this.logFile, 'a');
    const from = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').length : 0;
    // nsenter --net, not `ip netns exec`: the agent must share the machine's mount namespace
    // (src/agent/network/netns.ts), or the namespaces it makes (DHCP servers, routers) are
    // invisible outside it and outlive its kill with their dnsmasq
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.ns}`,
        process.execPath,
        AGENT_BUNDLE,
        '--listen',
        `0.0.0.0:${this.port}`,
        '--state-dir',
        this.stateDir,
        '--secret-file',
        this.lab.secretFile,
        '--name-prefix',
        this.prefix,
        '--accel',
        'tcg',
        '--vtep-ip',
        this.ip,
        '--stop-timeout',
        '20',
        ...extra,
      ],
      { stdio: ['ignore', out, out] },
    );
    this.child = child;
    for (let i = 0; i < 200; i++) {
      if (readFileSync(this.logFile, 'utf8').slice(from).includes('nimbus-agent listening')) return;
      if (child.exitCode !== null) break;
      await sleep(100);
    }
    throw new Error(`agent ${this.prefix} did not start:\n${readFileSync(this.logFile, 'utf8').slice(from)}`);
  }

  /** SIGKILL the agent (its guests keep running) and wait until it is gone */
  async killAgent(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // nsenter execs node in place: the child's PID is the agent's
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  vmDir(vmUuid: string): string {
    return join(this.stateDir, 'vms', vmUuid);
  }

  serial(vmUuid: string): string {
    const path = join(this.vmDir(vmUuid), 'serial.log');
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** the PID of a VM's QEMU, if one runs (checked against its command line) */
  qemuPid(vmUuid: string): number | undefined {
    const file = join(this.vmDir(vmUuid), 'qemu.pid');
    const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
    if (!pid) return undefined;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(vmUuid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  exec(...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.ns, ...args]);
  }

  /** links of the host namespace (name → master) */
  links(): Array<{ ifname: string; master?: string; kind?: string }> {
    return JSON.parse(sh('ip', ['-n', this.ns, '-d', '-j', 'link', 'show'])) as Array<{
      ifname: string;
      master?: string;
      linkinfo?: { info_kind?: string };
    }>;
  }

  nftRuleset(): string {
    return this.exec('nft', 'list', 'ruleset');
  }
}

export class KvmLab {
  readonly tag = randomBytes(2).toString('hex').slice(0, 3);
  readonly dir = mkdtempSync(join(tmpdir(), `nimbus-kvm-${this.tag}-`));
  readonly secret = randomBytes(24).toString('hex');
  readonly secretFile = join(this.dir, 'secret');
  readonly n = freeOctet();
  readonly underlayNs = `nku${this.tag}`;
  readonly publicNs = `nkp${this.tag}`;
  readonly rootVeth = `nkr${this.tag}`;
  /** the management node's address on the underlay */
  readonly rootIp = `100.64.${this.n}.254`;
  /** the outside world's address on the public network */
  readonly publicIp = `100.65.${this.n}.250`;
  readonly publicCidr = `100.65.${this.n}.0/24`;
  readonly hosts: LabHost[] = [];
  private readonly namespaces: string[] = [];
  private readonly extraPids: number[] = [];
  private servers = 0;

  constructor() {
    writeFileSync(this.secretFile, this.secret, { mode: 0o600 });
    this.addNs(this.underlayNs);
    this.addNs(this.publicNs);
    sh('ip', [
      '-n',
      this.underlayNs,
      'link',
      'add',
      'ubr',
      'type',
      'bridge',
      'stp_state',
      '0',
      'forward_delay',
      '0',
    ]);
    sh('ip', ['-n', this.underlayNs, 'link', 'set', 'ubr', 'up']);
    sh('ip', [
      '-n',
      this.publicNs,
      'link',
      'add',
      'pbr',
      'type',
      'bridge',
      'stp_state',
      '0',
      'forward_delay',
      '0',
    ]);
    sh('ip', ['-n', this.publicNs, 'link', 'set', 'pbr', 'up']);
    sh('ip', ['-n', this.publicNs, 'addr', 'add', `${this.publicIp}/24`, 'dev', 'pbr']);
    // the root namespace's leg into the underlay
    sh('ip', [
      'link',
      'add',
      this.rootVeth,
      'type',
      'veth',
      'peer',
      'name',
      'uroot',
      'netns',
      this.underlayNs,
    ]);
    sh('ip', ['-n', this.underlayNs, 'link', 'set', 'uroot', 'master', 'ubr', 'up']);
    sh('ip', ['addr', 'add', `${this.rootIp}/24`, 'dev', this.rootVeth]);
    sh('ip', ['link', 'set', this.rootVeth, 'up']);
  }

  private addNs(name: string): void {
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** a "hypervisor host": its namespace on the underlay and the public network (no agent yet) */
  addHost(): LabHost {
    const i = this.hosts.length + 1;
    const ns = `nkh${i}${this.tag}`;
    this.addNs(ns);
    const ip = `100.64.${this.n}.${i}`;
    sh('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      `uh${i}`,
      'netns',
      this.underlayNs,
    ]);
    sh('ip', ['-n', this.underlayNs, 'link', 'set', `uh${i}`, 'master', 'ubr', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1600', 'up']);
    sh('ip', ['-n', this.underlayNs, 'link', 'set', `uh${i}`, 'mtu', '1600']);
    sh('ip', [
      'link',
      'add',
      'pub0',
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      `ph${i}`,
      'netns',
      this.publicNs,
    ]);
    sh('ip', ['-n', this.publicNs, 'link', 'set', `ph${i}`, 'master', 'pbr', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'pub0', 'up']);
    const prefix = `k${this.tag}${i}`;
    const host = new LabHost(this, i, ns, prefix, ip, 7070);
    this.hosts.push(host);
    return host;
  }

  /**
   * A server of the test's own on the underlay (an NFS server, a Ceph cluster): its namespace,
   * deleted with the lab (with every process in it), and its address, 100.64.<n>.100 + i.
   */
  addServer(label: string): { ns: string; ip: string } {
    const i = this.servers++;
    const ns = `nks${label}${i}${this.tag}`;
    this.addNs(ns);
    const ip = `100.64.${this.n}.${100 + i}`;
    const peer = `us${i}`;
    sh('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'netns',
      this.underlayNs,
    ]);
    sh('ip', ['-n', this.underlayNs, 'link', 'set', peer, 'master', 'ubr', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    return { ns, ip };
  }

  /** a namespace of the test's own (a probe), deleted with the lab */
  probeNs(name: string): string {
    const ns = `nkq${name}${this.tag}`;
    this.addNs(ns);
    return ns;
  }

  /** a process of the test's own to kill at the end (a file server in a namespace, …) */
  own(pid: number | undefined): void {
    if (pid) this.extraPids.push(pid);
  }

  /** every namespace that is ours: the lab's and those our agents made (their name prefix) */
  ourNamespaces(): string[] {
    const all = sh('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);
    return all.filter((n) => this.namespaces.includes(n) || this.hosts.some((h) => n.startsWith(h.prefix)));
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts) await h.killAgent().catch(() => {});
    for (const pid of this.extraPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    for (const h of this.hosts) {
      const vms = existsSync(join(h.stateDir, 'vms')) ? readdirSync(join(h.stateDir, 'vms')) : [];
      for (const uuid of vms) {
        const pid = h.qemuPid(uuid);
        if (pid !== undefined) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
      }
    }
    // anything still in our namespaces (dnsmasq, QEMU) was started by our agents
    for (const ns of this.ourNamespaces()) {
      const pids = sh('ip', ['netns', 'pids', ns], { allowFail: true })
        .split('\n')
        .map(Number)
        .filter((p) => p > 1);
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
    }
    await sleep(300);
    for (const ns of this.ourNamespaces().reverse()) sh('ip', ['netns', 'del', ns], { allowFail: true });
    sh('ip', ['link', 'del', this.rootVeth], { allowFail: true });
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** a directory under the lab's (removed with it) */
  subdir(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }
}

/** waits until `probe` returns a value (not undefined), polling; throws with `what` on timeout */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 180_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
