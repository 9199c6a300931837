/**
 * `dhcp.set-entries`: flat networks' DHCP on this host (ZStack's distributed DHCP). Per L3 a
 * namespace `<prefix>d-<l3 tail>` with a veth into the L3's bridge carrying the server address
 * (`serverIp`, else the subnet's last usable address), running a dnsmasq that answers only the
 * NICs listed (the VMs of this host). Every host of an L2 may hold the same server address, so
 * the part's `bridge` nft table keeps the server's port talking only to this agent's TAPs: its
 * ARP, DHCP and DNS never leave the host through the uplink (VXLAN or physical), and another
 * host's server never answers here. A network not listed: dnsmasq stopped (pidfile PID),
 * namespace and files deleted. IPv4 only: an IPv6 L3 gets no DHCP server (logged).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DhcpNetwork } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { isValidMac, parseIp } from '../../kernel/ip.js';
import { inSubnet, lastUsable, networkAddress } from './addresses.js';
import type { PartContext } from './context.js';
import { ensureDnsmasq, removeDnsmasq } from './dnsmasq.js';
import { deleteLink, ip, link, run } from './exec.js';
import { deleteNs, ensureNs, listNamespaces } from './netns.js';

/** the server's interface inside its namespace */
const SERVER_IF = 'dhcp0';

function v4(text: string | null | undefined): boolean {
  return !!text && parseIp(text)?.version === 4;
}

export function validateDhcp(networks: DhcpNetwork[]): void {
  if (
    !Array.isArray(networks) ||
    networks.some(
      (n) => !Array.isArray(n?.entries) || !Array.isArray(n?.dns) || !Array.isArray(n?.hostRoutes),
    )
  ) {
    throw new CloudError(
      'Invalid',
      'HOST_DHCP_SPEC_INVALID',
      'networks: a list of networks with entries, dns and hostRoutes lists',
      {
        details: { field: 'networks' },
      },
    );
  }
  const problems: string[] = [];
  networks.forEach((n, i) => {
    const f = `networks[${i}]`;
    if (!n.l3NetworkUuid) problems.push(`${f}.l3NetworkUuid: required`);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(n.bridgeName ?? ''))
      problems.push(`${f}.bridgeName: not an interface name`);
    if (!(Number.isInteger(n.prefixLength) && n.prefixLength >= 0 && n.prefixLength <= 128))
      problems.push(`${f}.prefixLength: 0–128`);
    if (n.serverIp !== undefined && !parseIp(n.serverIp)) problems.push(`${f}.serverIp: not an address`);
    n.entries.forEach((e, j) => {
      if (!isValidMac(e.mac)) problems.push(`${f}.entries[${j}].mac: not a MAC`);
      if (!parseIp(e.ip)) problems.push(`${f}.entries[${j}].ip: not an address`);
      if (e.gateway !== null && !parseIp(e.gateway))
        problems.push(`${f}.entries[${j}].gateway: not an address`);
    });
  });
  if (problems.length > 0) {
    throw new CloudError('Invalid', 'HOST_DHCP_SPEC_INVALID', problems.join('; '), { details: { problems } });
  }
}

function dirOf(ctx: PartContext, ns: string): string {
  return join(ctx.stateDir, 'dhcp', ns);
}

export async function applyDhcp(ctx: PartContext, networks: DhcpNetwork[]): Promise<void> {
  validateDhcp(networks);
  const served = networks.filter((n) => {
    const ref = n.serverIp ?? n.gateway ?? n.entries[0]?.ip;
    if (v4(ref)) return true;
    ctx.log.warn(
      { l3NetworkUuid: n.l3NetworkUuid },
      'no IPv4 DHCP server for this network (IPv6 or no address)',
    );
    return false;
  });
  const wanted = new Set(served.map((n) => ctx.names.dhcpNs(n.l3NetworkUuid)));
  for (const ns of await ownDhcpNamespaces(ctx)) {
    if (!wanted.has(ns)) await removeServer(ctx, ns, undefined);
  }
  const veths: string[] = [];
  for (const n of served) {
    await ensureServer(ctx, n);
    veths.push(ctx.names.dhcpVeth(n.l3NetworkUuid));
  }
  await applyIsolation(ctx, veths);
}

/** namespaces of this part's DHCP servers (by name, and by directories a crash left behind) */
async function ownDhcpNamespaces(ctx: PartContext): Promise<string[]> {
  const fromNetns = (await listNamespaces()).filter((n) => n.startsWith(`${ctx.names.prefix}d-`));
  let fromDirs: string[] = [];
  try {
    fromDirs = await readdir(join(ctx.stateDir, 'dhcp'));
  } catch {
    fromDirs = [];
  }
  return [...new Set([...fromNetns, ...fromDirs.filter((n) => n.startsWith(`${ctx.names.prefix}d-`))])];
}

async function ensureServer(ctx: PartContext, n: DhcpNetwork): Promise<void> {
  const ns = ctx.names.dhcpNs(n.l3NetworkUuid);
  const veth = ctx.names.dhcpVeth(n.l3NetworkUuid);
  const ref = (n.serverIp ?? n.gateway ?? n.entries[0]?.ip) as string;
  const serverIp = n.serverIp ?? lastUsable(ref, n.prefixLength, 'serverIp');
  const network = networkAddress(ref, n.prefixLength, 'gateway');
  const bridge = await link(n.bridgeName);
  if (bridge?.linkinfo?.info_kind !== 'bridge') {
    throw new CloudError(
      'Unavailable',
      'HOST_BRIDGE_MISSING',
      `the host has no bridge ${n.bridgeName} (network.ensure-bridges first)`,
      {
        details: { bridgeName: n.bridgeName, l3NetworkUuid: n.l3NetworkUuid },
      },
    );
  }
  for (const e of n.entries) {
    if (!inSubnet(e.ip, network, n.prefixLength)) {
      throw new CloudError(
        'Invalid',
        'HOST_DHCP_SPEC_INVALID',
        `entry ${e.nicUuid}: ${e.ip} is outside ${network}/${n.prefixLength}`,
      );
    }
  }
  await ensureNs(ns);
  await plugVeth(veth, ns, SERVER_IF, n.bridgeName, n.mtu);
  await setOnlyAddress(ns, SERVER_IF, `${serverIp}/${n.prefixLength}`);
  const { pid, action } = await ensureDnsmasq({
    ns,
    iface: SERVER_IF,
    dir: dirOf(ctx, ns),
    network,
    prefixLength: n.prefixLength,
    entries: n.entries,
    dns: n.dns,
    domainName: n.domainName,
    mtu: n.mtu,
    hostRoutes: n.hostRoutes,
  });
  if (action !== 'none') ctx.log.info({ ns, pid, action, entries: n.entries.length }, 'dhcp server');
}

/**
 * A veth whose host end `hostEnd` is a port of `bridge` and whose other end `inner` is in `ns`
 * (remade when one end is missing, e.g. the namespace was deleted behind our back).
 */
export async function plugVeth(
  hostEnd: string,
  ns: string,
  inner: string,
  bridge: string,
  mtu: number,
): Promise<void> {
  const outer = await link(hostEnd);
  const innerLink = await link(inner, ns);
  if (!outer || !innerLink) {
    await deleteLink(hostEnd);
    await deleteLink(inner, ns);
    await ip(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
  }
  await ip(['link', 'set', 'dev', hostEnd, 'mtu', String(mtu)]);
  await ip(['link', 'set', 'dev', inner, 'mtu', String(mtu)], ns);
  if (outer?.master !== bridge) await ip(['link', 'set', 'dev', hostEnd, 'master', bridge]);
  await ip(['link', 'set', 'dev', hostEnd, 'up']);
  await ip(['link', 'set', 'dev', inner, 'up'], ns);
}

/** `inner` carries exactly `cidr` (IPv4); other IPv4 addresses are removed */
export async function setOnlyAddress(ns: string, iface: string, cidr: string): Promise<void> {
  await setAddresses(ns, iface, [cidr]);
}

interface AddrList {
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

export async function setAddresses(ns: string, iface: string, cidrs: string[]): Promise<void> {
  const out = await ip(['-j', 'addr', 'show', 'dev', iface], ns);
  const have = ((JSON.parse(out) as AddrList[])[0]?.addr_info ?? [])
    .filter((a) => a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`);
  for (const c of have) if (!cidrs.includes(c)) await ip(['addr', 'del', c, 'dev', iface], ns);
  for (const c of cidrs) if (!have.includes(c)) await ip(['addr', 'add', c, 'dev', iface], ns);
}

async function removeServer(ctx: PartContext, ns: string, l3NetworkUuid: string | undefined): Promise<void> {
  await removeDnsmasq(dirOf(ctx, ns));
  await deleteNs(ns);
  // the host end of the veth went with its peer; a half-made one may be left
  if (l3NetworkUuid) await deleteLink(ctx.names.dhcpVeth(l3NetworkUuid));
  ctx.log.info({ ns }, 'dhcp server removed');
}

/**
 * replaces the part's bridge table: DHCP server ports talk to this agent's TAPs only (no server:
 * no table, so a host without flat networks carries nothing of this part)
 */
async function applyIsolation(ctx: PartContext, veths: string[]): Promise<void> {
  const table = ctx.names.dhcpTable;
  const taps = `"${ctx.names.prefix}t*"`;
  const rules = veths.flatMap((v) => [
    `    iifname "${v}" oifname != ${taps} drop`,
    `    oifname "${v}" iifname != ${taps} drop`,
  ]);
  const define = [
    `table bridge ${table} {`,
    '  chain forward {',
    '    type filter hook forward priority -150; policy accept;',
    ...rules,
    '  }',
    '}',
  ];
  const script = [
    `table bridge ${table}`,
    `delete table bridge ${table}`,
    ...(veths.length > 0 ? define : []),
    '',
  ];
  await run('nft', ['-f', '-'], script.join('\n'));
}

export async function removeAllDhcp(ctx: PartContext): Promise<void> {
  for (const ns of await ownDhcpNamespaces(ctx)) await removeServer(ctx, ns, undefined);
}
