/**
 * `sg.apply`: security groups of the VM NICs on this host, as one nft script applied atomically
 * (`nft -f`: both tables are replaced in one transaction, NICs not listed lose their rules).
 *
 * Why two tables: the rules must be stateful (replies of allowed flows pass, default deny), and
 * this kernel has no bridge-family conntrack (CONFIG_NF_CONNTRACK_BRIDGE: `ct state` in a `bridge`
 * table fails with "Protocol error"), while an `inet` table sees bridged IP traffic only through
 * br_netfilter, where the in/out interface is the bridge, not the port. So:
 * - `table bridge <prefix>_sg` (forward, priority -200, before br_netfilter's IP hook at -1)
 *   knows the ports: it marks a packet from NIC i with i in the low 16 bits of the mark and a
 *   packet to NIC i with i in the high 16 bits, and drops spoofed source MAC/IPv4 (and ARP) and
 *   DHCP server replies coming from a VM;
 * - `table inet <prefix>_sg` (forward; br_netfilter sends bridged IPv4/IPv6 through it, the
 *   part turns on net.bridge.bridge-nf-call-ip{,6}tables in its namespace) matches the marks:
 *   egress chain of NIC i at priority -10, ingress chain at priority 0 (two base chains, so a
 *   VM-to-VM packet on one host passes the sender's egress AND the receiver's ingress; an accept
 *   ends only its own base chain). Each NIC chain: established/related accept, invalid drop,
 *   DHCP and IPv6 neighbour discovery accepted (the guest can always get its address), the rules
 *   as accepts, then drop.
 * A NIC in no group is not filtered (docs/network.md). ARP is not IP and is never dropped by the
 * groups, only by anti-spoofing. At most 65535 filtered NICs per host (16-bit mark fields).
 */
import { writeFile } from 'node:fs/promises';
import type { SgNic, SgRule } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { isValidMac, parseCidr, parseIp } from '../../kernel/ip.js';
import type { PartContext } from './context.js';
import { run } from './exec.js';
import { uuidTail } from './names.js';

const MAX_NICS = 0xffff;

function validAddrOrCidr(text: string): boolean {
  return text.includes('/') ? parseCidr(text) !== undefined : parseIp(text) !== undefined;
}

export function validateSg(nics: SgNic[]): void {
  if (
    !Array.isArray(nics) ||
    nics.some((n) => !Array.isArray(n?.rules) || !Array.isArray(n?.securityGroupUuids))
  ) {
    throw new CloudError(
      'Invalid',
      'HOST_SG_SPEC_INVALID',
      'nics: a list of NICs with rules and securityGroupUuids lists',
      {
        details: { field: 'nics' },
      },
    );
  }
  const problems: string[] = [];
  nics.forEach((n, i) => {
    const f = `nics[${i}]`;
    if (!n.nicUuid) problems.push(`${f}.nicUuid: required`);
    if (!isValidMac(n.mac)) problems.push(`${f}.mac: not a MAC`);
    if (n.ip !== null && !parseIp(n.ip)) problems.push(`${f}.ip: not an address`);
    n.rules.forEach((r, j) => {
      const g = `${f}.rules[${j}]`;
      if (r.direction !== 'ingress' && r.direction !== 'egress')
        problems.push(`${g}.direction: ingress|egress`);
      if (!['tcp', 'udp', 'icmp', 'all'].includes(r.protocol))
        problems.push(`${g}.protocol: tcp|udp|icmp|all`);
      if (r.ipVersion !== 4 && r.ipVersion !== 6) problems.push(`${g}.ipVersion: 4|6`);
      for (const p of [r.portStart, r.portEnd]) {
        if (p !== null && !(Number.isInteger(p) && p >= 0 && p <= 65535))
          problems.push(`${g}: port ${p} outside 0–65535`);
      }
      for (const c of r.remoteCidrs ?? [])
        if (!validAddrOrCidr(c)) problems.push(`${g}.remoteCidrs: '${c}' is not a CIDR`);
    });
  });
  if (nics.filter((n) => n.securityGroupUuids.length > 0).length > MAX_NICS)
    problems.push(`nics: more than ${MAX_NICS}`);
  if (problems.length > 0) {
    throw new CloudError('Invalid', 'HOST_SG_SPEC_INVALID', problems.join('; '), { details: { problems } });
  }
}

function ruleLine(r: SgRule): string | undefined {
  const fam = r.ipVersion === 6 ? 'ip6' : 'ip';
  const parts: string[] = [];
  if (r.remoteCidrs === null) parts.push(`meta nfproto ${r.ipVersion === 6 ? 'ipv6' : 'ipv4'}`);
  else {
    const cidrs = r.remoteCidrs.filter((c) => parseIp(c.split('/')[0] ?? '')?.version === r.ipVersion);
    // a remote group with no member of this version: the rule allows nobody
    if (cidrs.length === 0) return undefined;
    parts.push(`${fam} ${r.direction === 'ingress' ? 'saddr' : 'daddr'} { ${cidrs.join(', ')} }`);
  }
  if (r.protocol === 'tcp' || r.protocol === 'udp') {
    if (r.portStart !== null) {
      const end = r.portEnd ?? r.portStart;
      parts.push(`${r.protocol} dport ${end === r.portStart ? r.portStart : `${r.portStart}-${end}`}`);
    } else parts.push(`meta l4proto ${r.protocol}`);
  } else if (r.protocol === 'icmp') {
    parts.push(`meta l4proto ${r.ipVersion === 6 ? 'ipv6-icmp' : 'icmp'}`);
  }
  return `    ${parts.join(' ')} accept`;
}

/** the whole nft script for a set of NICs (exported for tests and for reading) */
export function sgScript(ctx: PartContext, nics: SgNic[]): string {
  const table = ctx.names.sgTable;
  const filtered = nics.filter((n) => n.securityGroupUuids.length > 0);
  const bridgeRules: string[] = [];
  const egressJumps: string[] = [];
  const ingressJumps: string[] = [];
  const chains: string[] = [];
  filtered.forEach((n, idx) => {
    const i = idx + 1;
    const tap = ctx.names.tap(n.nicUuid);
    const id = uuidTail(n.nicUuid, 12);
    const mac = n.mac.toLowerCase();
    bridgeRules.push(
      `    iifname "${tap}" meta mark set meta mark and 0xffff0000 or ${i}`,
      `    oifname "${tap}" meta mark set meta mark and 0x0000ffff or ${i << 16}`,
      `    iifname "${tap}" ether saddr != ${mac} drop`,
      `    iifname "${tap}" arp saddr ether != ${mac} drop`,
      `    iifname "${tap}" ip protocol udp udp sport 67 drop`,
    );
    if (n.ip && parseIp(n.ip)?.version === 4) {
      bridgeRules.push(
        `    iifname "${tap}" arp saddr ip != ${n.ip} drop`,
        `    iifname "${tap}" ip saddr != { 0.0.0.0, ${n.ip} } drop`,
      );
    }
    egressJumps.push(`    meta mark and 0x0000ffff == ${i} jump out_${id}`);
    ingressJumps.push(`    meta mark and 0xffff0000 == ${i << 16} jump in_${id}`);
    const lines = (dir: 'ingress' | 'egress') =>
      n.rules
        .filter((r) => r.direction === dir)
        .map(ruleLine)
        .filter((l): l is string => l !== undefined);
    chains.push(
      `  chain out_${id} {`,
      '    ct state established,related accept',
      '    ct state invalid drop',
      '    udp sport 68 udp dport 67 accept',
      '    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept',
      ...lines('egress'),
      '    drop',
      '  }',
      `  chain in_${id} {`,
      '    ct state established,related accept',
      '    ct state invalid drop',
      '    udp sport 67 udp dport 68 accept',
      '    icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept',
      ...lines('ingress'),
      '    drop',
      '  }',
    );
  });
  return [
    `table bridge ${table}`,
    `delete table bridge ${table}`,
    `table bridge ${table} {`,
    '  chain forward {',
    '    type filter hook forward priority -200; policy accept;',
    ...bridgeRules,
    '  }',
    '}',
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain egress {',
    '    type filter hook forward priority -10; policy accept;',
    ...egressJumps,
    '  }',
    '  chain ingress {',
    '    type filter hook forward priority 0; policy accept;',
    ...ingressJumps,
    '  }',
    ...chains,
    '}',
    '',
  ].join('\n');
}

export async function applySg(ctx: PartContext, nics: SgNic[]): Promise<void> {
  validateSg(nics);
  // no filtered NIC: no tables (br_netfilter stays as it is: other bridges may rely on it)
  if (!nics.some((n) => n.securityGroupUuids.length > 0)) return removeSgTables(ctx);
  await enableBridgeNetfilter();
  await run('nft', ['-f', '-'], sgScript(ctx, nics));
}

/** bridged IP traffic through the inet hooks, in this process's network namespace */
async function enableBridgeNetfilter(): Promise<void> {
  for (const f of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables']) {
    try {
      await writeFile(`/proc/sys/net/bridge/${f}`, '1');
    } catch (err) {
      throw new CloudError(
        'Unavailable',
        'HOST_BR_NETFILTER_MISSING',
        `cannot enable net.bridge.${f}: ${(err as Error).message}`,
        {
          details: { kernelFeature: 'CONFIG_BRIDGE_NETFILTER' },
        },
      );
    }
  }
}

export async function removeSgTables(ctx: PartContext): Promise<void> {
  for (const fam of ['bridge', 'inet']) {
    await run(
      'nft',
      ['-f', '-'],
      `table ${fam} ${ctx.names.sgTable}\ndelete table ${fam} ${ctx.names.sgTable}\n`,
    );
  }
}
