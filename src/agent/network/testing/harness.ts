/**
 * Test-only: a lab of "hosts" as network namespaces on this machine, an agent (runner.ts) per
 * host running inside its namespace, and "guests" as namespaces whose veth end is plugged into a
 * host bridge under the NIC's TAP name, with the NIC's MAC (DHCP and traffic are real, no QEMU).
 * Everything is named with a random tag and torn down by `Lab.destroy()` (the agents' cleanupAll,
 * then every namespace and process the lab made, by name and PID).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Names, namesFor } from '../names.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'runner.js');

/** why these tests cannot run here, or undefined */
export function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridges, nftables)';
  for (const tool of ['ip', 'bridge', 'nft', 'dnsmasq', 'busybox', 'nsenter', 'curl']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
    if (r.status !== 0)
      return `the tool ${tool} is missing (apt-get install iproute2 nftables dnsmasq-base busybox-static util-linux curl)`;
  }
  const probe = `nprobe${randomBytes(3).toString('hex')}`;
  const r = spawnSync('ip', ['netns', 'add', probe]);
  if (r.status !== 0) return `cannot make a network namespace: ${r.stderr.toString().trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** runs a command, throwing with its stderr when it fails */
export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

export function trySh(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export const nsx = (ns: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, ...args]);

export interface AgentError {
  code: string;
  reason: string;
  message: string;
}

/** one agent (the network part) running inside a host namespace */
export class TestAgent {
  private child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  readonly stderr: string[] = [];
  readonly names;

  constructor(
    readonly hostNs: string,
    readonly opts: { namePrefix: string; stateDir: string; vtepIp?: string },
  ) {
    this.names = namesFor(opts.namePrefix);
    this.child = spawn(
      'nsenter',
      [`--net=/run/netns/${hostNs}`, process.execPath, RUNNER, JSON.stringify(opts)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const msg = JSON.parse(line) as { id: number; result?: unknown; error?: AgentError };
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p?.reject(Object.assign(new Error(msg.error.message), msg.error));
      else p?.resolve(msg.result);
    });
    createInterface({ input: this.child.stderr as NodeJS.ReadableStream }).on('line', (l) =>
      this.stderr.push(l),
    );
    this.child.on('exit', () => {
      for (const p of this.pending.values())
        p.reject(new Error(`agent in ${hostNs} exited: ${this.stderr.join('\n')}`));
      this.pending.clear();
    });
  }

  private call(op: string, command: string | undefined, request: unknown): Promise<unknown> {
    this.seq += 1;
    const id = this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin?.write(`${JSON.stringify({ id, op, command, request })}\n`);
    });
  }

  send<T = unknown>(command: string, request: unknown): Promise<T> {
    return this.call('command', command, request) as Promise<T>;
  }
  ensureTap(nic: unknown): Promise<string> {
    return this.call('ensureTap', undefined, nic) as Promise<string>;
  }
  removeTap(nicUuid: string): Promise<void> {
    return this.call('removeTap', undefined, nicUuid) as Promise<void>;
  }
  cleanupAll(): Promise<void> {
    return this.call('cleanupAll', undefined, null) as Promise<void>;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin?.end();
    this.child.kill('SIGTERM');
    await exited;
  }
}

export interface Guest {
  ns: string;
  mac: string;
  nicUuid: string;
  tap: string;
}

/** namespaces, processes and agents of one test, all removed by destroy() */
export class Lab {
  readonly tag = `nt${randomBytes(3).toString('hex')}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'nimbus-net-'));
  private readonly namespaces: string[] = [];
  private readonly pids: number[] = [];
  readonly agents: TestAgent[] = [];

  ns(suffix: string): string {
    const name = `${this.tag}${suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  agent(hostNs: string, vtepIp?: string): TestAgent {
    const namePrefix = `${'abcdefghij'[this.agents.length] ?? 'z'}${randomBytes(2).toString('hex')}`;
    const a = new TestAgent(hostNs, { namePrefix, stateDir: join(this.dir, `agent-${namePrefix}`), vtepIp });
    this.agents.push(a);
    return a;
  }

  /** a veth between two namespaces with addresses (cidr '' = none) */
  wire(nsA: string, ifA: string, cidrA: string, nsB: string, ifB: string, cidrB: string): void {
    sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    for (const [ns, iface, cidr] of [
      [nsA, ifA, cidrA],
      [nsB, ifB, cidrB],
    ] as const) {
      if (cidr) sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', iface]);
      sh('ip', ['-n', ns, 'link', 'set', iface, 'up']);
    }
  }

  /** a guest namespace plugged into `bridge` of `agent`'s host as the NIC's TAP would be */
  guest(agent: { hostNs: string; names: Names }, suffix: string, bridge: string, mac = randomMac()): Guest {
    const ns = this.ns(suffix);
    const nicUuid = randomUUID();
    const tap = agent.names.tap(nicUuid);
    sh('ip', [
      'link',
      'add',
      tap,
      'netns',
      agent.hostNs,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    ]);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', mac]);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', agent.hostNs, 'link', 'set', tap, 'master', bridge, 'up']);
    return { ns, mac, nicUuid, tap };
  }

  /** busybox udhcpc in the guest; returns what the server offered (or undefined: no lease) */
  dhcp(g: Guest, tries = 4): Record<string, string> | undefined {
    const script = join(this.dir, 'udhcpc.sh');
    const out = join(this.dir, `lease-${g.ns}`);
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'case "$1" in',
        '  bound|renew)',
        '    ip addr flush dev "$interface"',
        '    ip addr add "$ip/$mask" dev "$interface"',
        '    gw=$(echo "$router" | cut -d" " -f1)',
        '    if [ -n "$gw" ]; then ip route replace default via "$gw" dev "$interface"; fi',
        '    printf "ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\ndomain=%s\\nmtu=%s\\nserverid=%s\\nstaticroutes=%s\\n" \\',
        '      "$ip" "$mask" "$router" "$dns" "$domain" "$mtu" "$serverid" "$staticroutes" > "$LEASE_OUT";;',
        'esac',
        'exit 0',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    rmSync(out, { force: true });
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        g.ns,
        'env',
        `LEASE_OUT=${out}`,
        'busybox',
        'udhcpc',
        '-i',
        'eth0',
        '-n',
        '-q',
        '-f',
        '-O',
        'mtu',
        '-O',
        'staticroutes',
        '-t',
        String(tries),
        '-T',
        '1',
        '-A',
        '1',
        '-s',
        script,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (r.status !== 0) return undefined;
    try {
      return Object.fromEntries(
        readFileSync(out, 'utf8')
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    } catch {
      return undefined;
    }
  }

  /** busybox httpd in a namespace answering GET /cgi-bin/who with the client's address */
  httpd(ns: string, port: number, dualStack = false): void {
    const www = join(this.dir, `www-${ns}-${port}`);
    sh('mkdir', ['-p', join(www, 'cgi-bin')]);
    writeFileSync(
      join(www, 'cgi-bin', 'who'),
      `#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\necho ${port}\n`,
      {
        mode: 0o755,
      },
    );
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'busybox',
        'httpd',
        '-f',
        '-p',
        dualStack ? `${port}` : `0.0.0.0:${port}`,
        '-h',
        www,
      ],
      {
        stdio: 'ignore',
      },
    );
    if (child.pid) this.pids.push(child.pid);
    // wait until it listens
    for (let i = 0; i < 50; i++) {
      if (
        trySh('ip', [
          'netns',
          'exec',
          ns,
          'sh',
          '-c',
          `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -qi ":${port.toString(16).padStart(4, '0')} .* 0A "`,
        ]).ok
      )
        return;
      spawnSync('sleep', ['0.1']);
    }
    throw new Error(`httpd on ${ns}:${port} did not start`);
  }

  /** GET http://addr:port/cgi-bin/who from a namespace: the address the server saw, or undefined */
  fetchWho(fromNs: string, addr: string, port: number): string | undefined {
    // busybox-static's wget segfaults here (measured), so curl
    const r = trySh('ip', [
      'netns',
      'exec',
      fromNs,
      'curl',
      '-s',
      '-m',
      '3',
      `http://${addr.includes(':') ? `[${addr}]` : addr}:${port}/cgi-bin/who`,
    ]);
    return r.ok ? (r.out.trim().split('\n')[0] ?? '').replace(/^\[(::ffff:)?|\]$/g, '') : undefined;
  }

  /** the port the server that answered GET http://addr:port/cgi-bin/who listens on (after any DNAT) */
  servedPort(fromNs: string, addr: string, port: number): number | undefined {
    const r = trySh('ip', [
      'netns',
      'exec',
      fromNs,
      'curl',
      '-s',
      '-m',
      '3',
      `http://${addr.includes(':') ? `[${addr}]` : addr}:${port}/cgi-bin/who`,
    ]);
    return r.ok ? Number(r.out.trim().split('\n')[1]) : undefined;
  }

  ping(fromNs: string, addr: string): boolean {
    return trySh('ip', ['netns', 'exec', fromNs, 'busybox', 'ping', '-c', '1', '-W', '2', addr]).ok;
  }

  async destroy(): Promise<void> {
    for (const a of this.agents) {
      try {
        await a.cleanupAll();
      } catch {
        // destroy goes on: the namespaces below take the rest
      }
      await a.stop();
    }
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    for (const ns of [...this.namespaces].reverse()) {
      const pids = trySh('ip', ['netns', 'pids', ns])
        .out.split('\n')
        .map(Number)
        .filter((p) => p > 1);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      trySh('ip', ['netns', 'del', ns]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function randomMac(): string {
  const b = randomBytes(5);
  return ['52', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** what of an agent's is still on the machine (its prefix, its bridges) */
export function leftovers(agent: { hostNs: string; names: Names }, bridges: string[]): string[] {
  const p = agent.names.prefix;
  const found: string[] = [];
  for (const ns of trySh('ip', ['netns', 'list']).out.split('\n')) {
    const name = ns.trim().split(/\s+/)[0] ?? '';
    if (name.startsWith(p)) found.push(`netns ${name}`);
  }
  const links = trySh('ip', ['-n', agent.hostNs, '-o', 'link', 'show']).out;
  for (const l of links.split('\n')) {
    const name = l.split(':')[1]?.trim().split('@')[0] ?? '';
    if (name.startsWith(p) || bridges.includes(name)) found.push(`link ${name}`);
  }
  const tables = trySh('ip', ['netns', 'exec', agent.hostNs, 'nft', 'list', 'tables']).out;
  for (const t of tables.split('\n')) if (t.includes(p)) found.push(`nft ${t.trim()}`);
  return found;
}
