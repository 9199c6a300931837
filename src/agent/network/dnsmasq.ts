/**
 * One dnsmasq serving DHCP (IPv4) on one interface inside a namespace: the flat networks'
 * distributed DHCP and the virtual routers' DHCP share it. Static answers only (ZStack's model:
 * the management side allocated every address; no dynamic range, so a MAC not listed gets no
 * answer). Files under its directory: `dnsmasq.conf` (what needs a restart to change: interface,
 * subnet, files), `hosts` (MAC → tags, IP, hostname) and `opts` (router, DNS, domain, MTU,
 * classless routes): those two are re-read on SIGHUP, so entry changes never drop the server.
 * Only the entries with a gateway (the VM's default NIC) get option 3 and a default route in
 * option 121 (a client that gets 121 ignores 3, RFC 3442); the others get an empty router option,
 * since dnsmasq would otherwise offer itself as the router. Which MACs get a gateway is in
 * dnsmasq.conf (`dhcp-mac` tags, see dnsmasqFiles): changing it restarts the daemon.
 * The daemon is found again by its pidfile, checked against /proc/<pid>/cmdline (a reused PID
 * of another program is not ours).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DhcpEntry } from '../../contract/agent.js';
import { prefixToNetmask } from '../../kernel/ip.js';
import { run } from './exec.js';

export interface DnsmasqSpec {
  ns: string;
  iface: string;
  dir: string;
  /** the subnet's network address and prefix */
  network: string;
  prefixLength: number;
  entries: DhcpEntry[];
  dns: string[];
  domainName: string | null;
  mtu: number;
  hostRoutes: Array<{ destination: string; nexthop: string }>;
}

const LEASE_SECONDS = 3600;

function hostname(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
}

export function dnsmasqFiles(spec: DnsmasqSpec): { conf: string; hosts: string; opts: string } {
  // per-MAC tags live here, not in the hosts file: dnsmasq 2.90 dies on SIGHUP when hosts-file
  // lines carry `set:` tags and a lease exists (measured), so a change of the default NICs restarts it
  const withGateway = spec.entries.filter((e) => e.gateway).sort((a, b) => a.mac.localeCompare(b.mac));
  const gateways = [...new Set(withGateway.map((e) => e.gateway as string))].sort();
  const tags = withGateway.flatMap((e) => {
    const mac = e.mac.toLowerCase();
    return [`dhcp-mac=set:hasgw,${mac}`, `dhcp-mac=set:gw${gateways.indexOf(e.gateway as string)},${mac}`];
  });
  const conf = [
    'port=0',
    'no-resolv',
    'no-hosts',
    `interface=${spec.iface}`,
    'bind-interfaces',
    'except-interface=lo',
    `dhcp-range=${spec.network},static,${prefixToNetmask(spec.prefixLength)},${LEASE_SECONDS}`,
    `dhcp-hostsfile=${join(spec.dir, 'hosts')}`,
    `dhcp-optsfile=${join(spec.dir, 'opts')}`,
    `dhcp-leasefile=${join(spec.dir, 'leases')}`,
    `pid-file=${join(spec.dir, 'dnsmasq.pid')}`,
    `log-facility=${join(spec.dir, 'dnsmasq.log')}`,
    'log-dhcp',
    'no-ping',
    'dhcp-authoritative',
    'user=root',
    'group=root',
    ...tags,
    '',
  ].join('\n');
  const hosts = spec.entries.map((e) => {
    const name = hostname(e.hostname);
    return `${e.mac.toLowerCase()},${e.ip}${name ? `,${name}` : ''}`;
  });
  const opts: string[] = ['tag:!hasgw,option:router'];
  const routes = spec.hostRoutes.map((r) => `${r.destination},${r.nexthop}`);
  if (routes.length > 0) opts.push(`tag:!hasgw,option:classless-static-route,${routes.join(',')}`);
  if (spec.dns.length > 0) opts.push(`option:dns-server,${spec.dns.join(',')}`);
  if (spec.domainName) opts.push(`option:domain-name,${spec.domainName}`);
  opts.push(`option:mtu,${spec.mtu}`);
  gateways.forEach((gw, g) => {
    opts.push(`tag:gw${g},option:router,${gw}`);
    if (routes.length > 0)
      opts.push(`tag:gw${g},option:classless-static-route,${[...routes, `0.0.0.0/0,${gw}`].join(',')}`);
  });
  return { conf, hosts: `${hosts.join('\n')}\n`, opts: `${opts.join('\n')}\n` };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** the PID in the pidfile when that process is alive and is the dnsmasq of this directory */
export async function runningPid(dir: string): Promise<number | undefined> {
  const text = await readText(join(dir, 'dnsmasq.pid'));
  const pid = Number(text?.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const cmdline = await readText(`/proc/${pid}/cmdline`);
  if (!cmdline?.includes(join(dir, 'dnsmasq.conf'))) return undefined;
  return pid;
}

/** writes the files; starts, reloads (SIGHUP) or restarts the daemon as the change needs */
export async function ensureDnsmasq(spec: DnsmasqSpec): Promise<{ pid: number; action: string }> {
  await mkdir(spec.dir, { recursive: true });
  const files = dnsmasqFiles(spec);
  const confPath = join(spec.dir, 'dnsmasq.conf');
  const confChanged = (await readText(confPath)) !== files.conf;
  const listsChanged =
    (await readText(join(spec.dir, 'hosts'))) !== files.hosts ||
    (await readText(join(spec.dir, 'opts'))) !== files.opts;
  await writeFile(join(spec.dir, 'hosts'), files.hosts);
  await writeFile(join(spec.dir, 'opts'), files.opts);
  await writeFile(confPath, files.conf);
  let pid = await runningPid(spec.dir);
  let action = 'none';
  if (pid !== undefined && confChanged) {
    await stopPid(pid);
    pid = undefined;
  }
  if (pid === undefined) {
    // dnsmasq daemonises: the call returns once the pidfile is written and the socket bound
    await run('ip', ['netns', 'exec', spec.ns, 'dnsmasq', `--conf-file=${confPath}`]);
    pid = await runningPid(spec.dir);
    if (pid === undefined)
      throw new Error(`dnsmasq in ${spec.ns} did not leave a live pid (see ${spec.dir}/dnsmasq.log)`);
    action = 'started';
  } else if (listsChanged) {
    process.kill(pid, 'SIGHUP');
    action = 'reloaded';
  }
  return { pid, action };
}

/** alive and not a zombie: a daemon's exit leaves a zombie until init reaps it, which may take long */
async function running(pid: number): Promise<boolean> {
  const stat = await readText(`/proc/${pid}/stat`);
  return stat !== undefined && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    if (!(await running(pid))) return;
    await new Promise((r) => setTimeout(r, 40));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** stops the dnsmasq of this directory (by its pidfile) and removes the directory */
export async function removeDnsmasq(dir: string): Promise<void> {
  const pid = await runningPid(dir);
  if (pid !== undefined) await stopPid(pid);
  await rm(dir, { recursive: true, force: true });
}
