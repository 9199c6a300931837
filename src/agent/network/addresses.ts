/** Address arithmetic the network part needs (IPv4; the kernel's ip.ts does the parsing). */
import { CloudError } from '../../kernel/errors.js';
import { cidrRange, formatIp, networkOf, parseIp, usableRange } from '../../kernel/ip.js';

export function parseV4(text: string, field: string): bigint {
  const p = parseIp(text);
  if (p?.version !== 4) {
    throw new CloudError(
      'Invalid',
      'HOST_NETWORK_SPEC_INVALID',
      `${field}: '${text}' is not an IPv4 address`,
      {
        details: { field },
      },
    );
  }
  return p.value;
}

/** the network address of `ip/prefix` */
export function networkAddress(ip: string, prefix: number, field: string): string {
  return formatIp(networkOf(parseV4(ip, field), prefix, 4), 4);
}

/**
 * The DHCP server's address when the management side gives none: the last usable address of the
 * subnet (the gateway defaults to the first; IPAM hands out random ones, so the management side
 * should reserve it — or send `serverIp`).
 */
export function lastUsable(ip: string, prefix: number, field: string): string {
  const network = networkOf(parseV4(ip, field), prefix, 4);
  const { last } = usableRange({ version: 4, network, prefix });
  return formatIp(last, 4);
}

export function inSubnet(ip: string, network: string, prefix: number): boolean {
  const p = parseIp(ip);
  const n = parseIp(network);
  if (!p || !n || p.version !== 4 || n.version !== 4) return false;
  const { first, last } = cidrRange({ version: 4, network: networkOf(n.value, prefix, 4), prefix });
  return p.value >= first && p.value <= last;
}
