/**
 * Test-only: looking at guests and hosts from outside. A probe is a namespace of the test's own
 * with a veth into a host's bridge (it stands where a VM would, without being one); from it the
 * tests ping and fetch the guests' http page. `leftovers` lists what real hosts still hold of
 * the given VMs (QEMU processes, TAPs and other links, nft rules, files) and anything left of
 * the agents' networks: namespaces of their prefix (DHCP servers, virtual routers), dnsmasq
 * processes serving from their state dirs, router and appliance files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KvmLab, LabHost } from './kvm-lab.js';
import { sh } from './kvm-lab.js';

export function attachProbe(lab: KvmLab, host: LabHost, bridge: string, cidr: string): string {
  const ns = lab.probeNs('p');
  const veth = `pq${lab.tag}`;
  sh('ip', ['link', 'add', veth, 'netns', host.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh('ip', ['-n', host.ns, 'link', 'set', veth, 'mtu', '1400', 'master', bridge, 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1400', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
  return ns;
}

export function detachProbe(lab: KvmLab, host: LabHost, _ns: string): void {
  sh('ip', ['-n', host.ns, 'link', 'del', `pq${lab.tag}`], { allowFail: true });
}

export function pingOk(ns: string, ip: string): boolean {
  return spawnSync('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '2', ip]).status === 0;
}

/** the guest's http page, or undefined when nothing answered within 3 s */
export function curl(ns: string, ip: string, port = 80): string | undefined {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-s', '-m', '3', `http://${ip}:${port}/`], {
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout.length > 0 ? r.stdout : undefined;
}

/** pings once a second until `stop()`; resolves with what busybox counted */
export function pingFor(ns: string, ip: string, maxSeconds: number) {
  const child = spawn('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-w', String(maxSeconds), ip], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const done = new Promise<{ sent: number; received: number }>((resolve) => {
    child.on('exit', () => {
      const m = /(\d+) packets transmitted, (\d+) packets received/.exec(out);
      resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) });
    });
  });
  return {
    stop(): Promise<{ sent: number; received: number }> {
      child.kill('SIGINT');
      return done;
    },
  };
}

function tail(uuid: string, n: number): string {
  const hex = uuid.toLowerCase().replace(/[^0-9a-f]/g, '');
  return hex.slice(hex.length - n);
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

export interface Leftovers {
  qemu: string[];
  taps: string[];
  namespaces: string[];
  dnsmasq: string[];
  nftRules: string[];
  files: string[];
}

/** What the hosts still hold of these VMs, NICs and volumes, and any agent-made link or namespace. */
export function leftovers(
  lab: KvmLab,
  vmUuids: string[],
  nics: Array<{ uuid: string; ip: string; mac: string }>,
  volumeUuids: string[],
): Leftovers {
  const left: Leftovers = { qemu: [], taps: [], namespaces: [], dnsmasq: [], nftRules: [], files: [] };
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes('qemu-system') && vmUuids.some((u) => cmdline.includes(u))) left.qemu.push(pid);
    // an agent's dnsmasq reads its conf from the agent's state dir (`<state>/{dhcp,router}/<prefix>…`)
    const agent = lab.hosts.find((h) => cmdline.includes(h.stateDir));
    if (cmdline.includes('dnsmasq') && agent)
      left.dnsmasq.push(`${agent.prefix}: ${pid} ${cmdline.replace(/\0/g, ' ').trim()}`);
  }
  for (const h of lab.hosts) {
    const base = new Set(['lo', 'eth0', 'pub0']);
    for (const l of h.links()) if (!base.has(l.ifname)) left.taps.push(`${h.ns}:${l.ifname}`);
    const taps = nics.map((n) => `${h.prefix}t${tail(n.uuid, 15 - h.prefix.length - 1)}`);
    const needles = [...taps, ...nics.map((n) => n.mac.toLowerCase()), ...nics.map((n) => n.ip)];
    for (const line of h.nftRuleset().split('\n')) {
      if (needles.some((x) => line.toLowerCase().includes(x))) left.nftRules.push(`${h.ns}: ${line.trim()}`);
    }
    for (const uuid of vmUuids) if (existsSync(h.vmDir(uuid))) left.files.push(h.vmDir(uuid));
    // a router's dnsmasq files and an appliance VM's record (src/agent/appliance/)
    left.files.push(...filesUnder(join(h.stateDir, 'router')), ...filesUnder(join(h.stateDir, 'appliances')));
  }
  left.namespaces = lab.ourNamespaces().filter((n) => lab.hosts.some((h) => n.startsWith(h.prefix)));
  for (const f of filesUnder(join(lab.dir, 'primary'))) {
    if (volumeUuids.some((v) => f.includes(v))) left.files.push(f);
  }
  return left;
}
