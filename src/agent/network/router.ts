/**
 * `router.apply-config` / `router.status`: a virtual router realised as a namespace on the host
 * (`<prefix>r-<router tail>`) instead of inside its appliance VM: a guest leg (veth `guest` in
 * the guest L3's bridge, `guest.ip/prefixLength`, the guests' gateway), a public leg (veth
 * `public` in the public L3's bridge, `public.ip/prefixLength` plus every EIP / port-forwarding /
 * SNAT public address as /32, default route via `public.gateway`), IPv4 forwarding on, a
 * dnsmasq on the guest leg with the config's DHCP entries, and one nft table (replaced as a
 * whole with each config):
 * - EIP: DNAT publicIp → guestIp, SNAT guestIp → publicIp (1:1, before the network SNAT);
 * - SNAT: guestCidr leaving by the public leg → snat.publicIp;
 * - port forwarding: DNAT of publicIp:range (tcp|udp) → guestIp:range, only from `allowedCidr`
 *   when given (others reach the router itself, where nothing listens).
 * The bridges come from `guest.bridgeName` / `public.bridgeName` (required here).
 * The contract has no command that deletes a router: the router's appliance VM's vm.stop /
 * vm.destroy remove it (`removeRouter`, through src/agent/appliance/), and cleanupAll removes all.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RouterConfig } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { isValidMac, parseCidr, parseIp } from '../../kernel/ip.js';
import { networkAddress } from './addresses.js';
import type { PartContext } from './context.js';
import { plugVeth, setAddresses } from './dhcp.js';
import { ensureDnsmasq, removeDnsmasq } from './dnsmasq.js';
import { deleteLink, inNs, ip, link, runRaw } from './exec.js';
import { deleteNs, ensureNs, listNamespaces, nsExists } from './netns.js';

const GUEST_IF = 'guest';
const PUBLIC_IF = 'public';

function v4(text: string | null | undefined): boolean {
  return !!text && parseIp(text)?.version === 4;
}

export function validateRouter(c: RouterConfig): void {
  if (!c || ![c.eips, c.portForwardings, c.dhcp, c.dns].every(Array.isArray)) {
    throw new CloudError(
      'Invalid',
      'HOST_ROUTER_CONFIG_INVALID',
      'config: eips, portForwardings, dhcp and dns lists are required',
      {
        details: { field: 'config' },
      },
    );
  }
  const p: string[] = [];
  if (!c.routerUuid) p.push('config.routerUuid: required');
  if (!v4(c.guest?.ip)) p.push('config.guest.ip: an IPv4 address');
  if (!v4(c.public?.ip)) p.push('config.public.ip: an IPv4 address');
  if (c.public?.gateway !== null && !v4(c.public?.gateway))
    p.push('config.public.gateway: an IPv4 address or null');
  for (const [f, n] of [
    ['guest', c.guest?.prefixLength],
    ['public', c.public?.prefixLength],
  ] as const) {
    if (!(Number.isInteger(n) && (n ?? -1) >= 0 && (n ?? 33) <= 32)) p.push(`config.${f}.prefixLength: 0–32`);
  }
  if (!c.guest?.bridgeName)
    p.push('config.guest.bridgeName: required on a real host (the bridge of the guest L2)');
  if (!c.public?.bridgeName)
    p.push('config.public.bridgeName: required on a real host (the bridge of the public L2)');
  if (c.snat && (!v4(c.snat.publicIp) || !parseCidr(c.snat.guestCidr)))
    p.push('config.snat: publicIp and guestCidr (IPv4)');
  c.eips.forEach((e, i) => {
    if (!v4(e.publicIp) || !v4(e.guestIp)) p.push(`config.eips[${i}]: publicIp and guestIp (IPv4)`);
  });
  c.portForwardings.forEach((r, i) => {
    const f = `config.portForwardings[${i}]`;
    if (r.protocol !== 'tcp' && r.protocol !== 'udp') p.push(`${f}.protocol: tcp|udp`);
    if (!v4(r.publicIp) || !v4(r.guestIp)) p.push(`${f}: publicIp and guestIp (IPv4)`);
    const ports = [r.publicPortStart, r.publicPortEnd, r.privatePortStart, r.privatePortEnd];
    if (!ports.every((x) => Number.isInteger(x) && x >= 1 && x <= 65535)) p.push(`${f}: ports 1–65535`);
    else if (
      r.publicPortEnd - r.publicPortStart !== r.privatePortEnd - r.privatePortStart ||
      r.publicPortEnd < r.publicPortStart
    )
      p.push(`${f}: public and private ranges of one length`);
    if (r.allowedCidr !== null && !parseCidr(r.allowedCidr) && !v4(r.allowedCidr))
      p.push(`${f}.allowedCidr: a CIDR`);
  });
  c.dhcp.forEach((e, i) => {
    if (!isValidMac(e.mac) || !v4(e.ip)) p.push(`config.dhcp[${i}]: mac and IPv4 ip`);
  });
  for (const d of c.dns) if (!parseIp(d)) p.push(`config.dns: '${d}' is not an address`);
  if (p.length > 0)
    throw new CloudError('Invalid', 'HOST_ROUTER_CONFIG_INVALID', p.join('; '), { details: { problems: p } });
}

function dirOf(ctx: PartContext, ns: string): string {
  return join(ctx.stateDir, 'router', ns);
}

async function bridgeMtu(name: string): Promise<number> {
  const b = await link(name);
  if (b?.linkinfo?.info_kind !== 'bridge') {
    throw new CloudError(
      'Unavailable',
      'HOST_BRIDGE_MISSING',
      `the host has no bridge ${name} (network.ensure-bridges first)`,
      {
        details: { bridgeName: name },
      },
    );
  }
  return b.mtu ?? 1500;
}

/** the router's NAT table (one per namespace, so the same name in each) */
function natTable(ctx: PartContext): string {
  return `${ctx.names.prefix}_nat`;
}

export function natScript(ctx: PartContext, c: RouterConfig): string {
  const table = natTable(ctx);
  const pre: string[] = [];
  const post: string[] = [];
  for (const e of c.eips) {
    pre.push(`    ip daddr ${e.publicIp} dnat to ${e.guestIp}`);
    post.push(`    ip saddr ${e.guestIp} oifname "${PUBLIC_IF}" snat to ${e.publicIp}`);
  }
  for (const r of c.portForwardings) {
    const from = r.allowedCidr ? `ip saddr ${r.allowedCidr} ` : '';
    const pub =
      r.publicPortStart === r.publicPortEnd
        ? `${r.publicPortStart}`
        : `${r.publicPortStart}-${r.publicPortEnd}`;
    let to: string;
    if (r.publicPortStart === r.privatePortStart) to = r.guestIp;
    else if (r.publicPortStart === r.publicPortEnd) to = `${r.guestIp}:${r.privatePortStart}`;
    else {
      const pairs: string[] = [];
      for (let k = 0; k <= r.publicPortEnd - r.publicPortStart; k++)
        pairs.push(`${r.publicPortStart + k} : ${r.privatePortStart + k}`);
      to = `${r.guestIp} : ${r.protocol} dport map { ${pairs.join(', ')} }`;
    }
    // DNAT goes before the EIP lines would matter only if an EIP shared the address: a VIP serves one kind
    pre.unshift(`    ${from}ip daddr ${r.publicIp} ${r.protocol} dport ${pub} dnat to ${to}`);
  }
  if (c.snat) post.push(`    ip saddr ${c.snat.guestCidr} oifname "${PUBLIC_IF}" snat to ${c.snat.publicIp}`);
  return [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    '  chain prert {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...pre,
    '  }',
    '  chain postrt {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...post,
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function applyRouter(ctx: PartContext, c: RouterConfig): Promise<void> {
  validateRouter(c);
  const ns = ctx.names.routerNs(c.routerUuid);
  const guestBridge = c.guest.bridgeName as string;
  const publicBridge = c.public.bridgeName as string;
  const publicMtu = await bridgeMtu(publicBridge);
  await bridgeMtu(guestBridge);
  await ensureNs(ns);
  await plugVeth(ctx.names.routerGuestVeth(c.routerUuid), ns, GUEST_IF, guestBridge, c.guest.mtu);
  await plugVeth(ctx.names.routerPublicVeth(c.routerUuid), ns, PUBLIC_IF, publicBridge, publicMtu);
  await setAddresses(ns, GUEST_IF, [`${c.guest.ip}/${c.guest.prefixLength}`]);
  const extra = new Set<string>([
    ...c.eips.map((e) => e.publicIp),
    ...c.portForwardings.map((r) => r.publicIp),
    ...(c.snat ? [c.snat.publicIp] : []),
  ]);
  extra.delete(c.public.ip);
  await setAddresses(ns, PUBLIC_IF, [
    `${c.public.ip}/${c.public.prefixLength}`,
    ...[...extra].map((a) => `${a}/32`),
  ]);
  await inNs(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  if (c.public.gateway)
    await ip(['route', 'replace', 'default', 'via', c.public.gateway, 'dev', PUBLIC_IF], ns);
  else await runRaw('ip', ['-n', ns, 'route', 'del', 'default']);
  await inNs(ns, 'nft', ['-f', '-'], natScript(ctx, c));
  await ensureDnsmasq({
    ns,
    iface: GUEST_IF,
    dir: dirOf(ctx, ns),
    network: networkAddress(c.guest.ip, c.guest.prefixLength, 'config.guest.ip'),
    prefixLength: c.guest.prefixLength,
    entries: c.dhcp,
    dns: c.dns,
    domainName: c.domainName,
    mtu: c.guest.mtu,
    hostRoutes: [],
  });
  ctx.log.info({ ns, eips: c.eips.length, portForwardings: c.portForwardings.length }, 'router applied');
}

/** the router's namespace is there (a host reboot or cleanup loses it) */
export function routerPresent(ctx: PartContext, routerUuid: string): Promise<boolean> {
  return nsExists(ctx.names.routerNs(routerUuid));
}

/**
 * Removes what a router namespace holds, by its name: its dnsmasq (by pidfile) with the state
 * directory, its nft table, then the namespace (whatever still runs inside is killed; the veth
 * ends inside go with it, and so their peers on the host). Missing parts are fine.
 */
async function removeRouterNs(ctx: PartContext, ns: string): Promise<void> {
  await removeDnsmasq(dirOf(ctx, ns));
  if (await nsExists(ns))
    await runRaw('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'ip', natTable(ctx)]);
  await deleteNs(ns);
}

/**
 * Removes one router from this host: its dnsmasq, nft table, both veths, namespace and state
 * directory (idempotent: a router this host never had is success). The caller forgets its version.
 */
export async function removeRouter(ctx: PartContext, routerUuid: string): Promise<void> {
  await deleteLink(ctx.names.routerGuestVeth(routerUuid));
  await deleteLink(ctx.names.routerPublicVeth(routerUuid));
  await removeRouterNs(ctx, ctx.names.routerNs(routerUuid));
}

/** every router this part made: those it applied by uuid, then any namespace of its prefix left */
export async function removeAllRouters(ctx: PartContext): Promise<void> {
  for (const uuid of Object.keys(ctx.state.get().routers)) await removeRouter(ctx, uuid);
  for (const ns of await listNamespaces()) {
    if (ns.startsWith(`${ctx.names.prefix}r-`)) await removeRouterNs(ctx, ns);
  }
  await rm(join(ctx.stateDir, 'router'), { recursive: true, force: true });
}
