/**
 * The names this part gives what it makes on a host. Every one carries the agent's `namePrefix`
 * (two agents on one machine — test "hosts" as namespaces — never collide, and cleanup finds
 * exactly its own things by prefix). Interface names are at most 15 characters (IFNAMSIZ), so
 * they take the LAST hex digits of a UUID: UUIDs are v7, whose first digits are a timestamp that
 * neighbours share. Bridges are the exception: their names come from the management side
 * (`bridgeName` of the spec) and the part records which ones it made.
 */
import { CloudError } from '../../kernel/errors.js';

const PREFIX_RE = /^[a-z][a-z0-9]{0,4}$/;
const IFNAMSIZ = 15;

export function checkPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) {
    throw new CloudError(
      'Invalid',
      'AGENT_NAME_PREFIX_INVALID',
      `namePrefix must be 1–5 lowercase letters or digits starting with a letter, got '${prefix}'`,
      { details: { field: 'namePrefix' } },
    );
  }
}

/** the last `n` hex digits of a UUID */
export function uuidTail(uuid: string, n: number): string {
  const hex = uuid.toLowerCase().replace(/[^0-9a-f]/g, '');
  return hex.slice(Math.max(0, hex.length - n));
}

export interface Names {
  prefix: string;
  /** the TAP of a VM NIC (also what security groups match) */
  tap(nicUuid: string): string;
  /** the VXLAN device of a VNI */
  vxlan(vni: number): string;
  /** the namespace serving DHCP for a flat L3 */
  dhcpNs(l3Uuid: string): string;
  /** its veth end on the host, plugged into the L3's bridge */
  dhcpVeth(l3Uuid: string): string;
  routerNs(routerUuid: string): string;
  routerGuestVeth(routerUuid: string): string;
  routerPublicVeth(routerUuid: string): string;
  /** nft table names (per part) */
  sgTable: string;
  dhcpTable: string;
  /** whether a namespace / interface name is one of this part's */
  ownsNs(name: string): boolean;
  ownsLink(name: string): boolean;
}

export function namesFor(prefix: string): Names {
  checkPrefix(prefix);
  // one letter tells the kind, the rest of the 15 characters is UUID tail (at least 9 digits)
  const ifname = (kind: string, uuid: string) =>
    `${prefix}${kind}${uuidTail(uuid, IFNAMSIZ - prefix.length - 1)}`;
  const nsTail = (uuid: string) => uuidTail(uuid, 12);
  return {
    prefix,
    tap: (nic) => ifname('t', nic),
    vxlan: (vni) => `${prefix}x${vni}`,
    dhcpNs: (l3) => `${prefix}d-${nsTail(l3)}`,
    dhcpVeth: (l3) => ifname('d', l3),
    routerNs: (r) => `${prefix}r-${nsTail(r)}`,
    routerGuestVeth: (r) => ifname('g', r),
    routerPublicVeth: (r) => ifname('p', r),
    sgTable: `${prefix}_sg`,
    dhcpTable: `${prefix}_dhcp`,
    ownsNs: (name) => name.startsWith(`${prefix}d-`) || name.startsWith(`${prefix}r-`),
    ownsLink: (name) => name.startsWith(prefix) && /^[tdgpx]$/.test(name.charAt(prefix.length)),
  };
}
