/**
 * A virtual router's whole configuration (`RouterConfig`, src/contract/agent.ts), read from the
 * database: its guest network (the L3 it serves: its address there is the gateway), its public
 * address, DNS, the DHCP entries of every NIC on the guest L3 but its own, source NAT of the
 * guest subnet through the public address, and the EIPs and port-forwarding rules whose NIC is
 * on the guest L3, and the host bridges its two legs plug into. The router replaces its configuration with this one as a unit, so nothing
 * here is a delta: what is not listed is removed.
 */
import type { DhcpEntry, RouterConfig } from '../../../contract/agent.js';
import type { Executor } from '../../../db/transaction.js';
import { formatIp, networkOf, parseIp } from '../../../kernel/ip.js';
import { bridgeName } from '../host-sync.js';

export interface RouterRow {
  uuid: string;
  l3NetworkUuid: string;
  offeringUuid: string;
  vmUuid: string | null;
  publicIp: string | null;
  guestIp: string | null;
}

/** a VM name as a DHCP hostname: lower-case letters, digits and dashes, at most 63 characters */
export function hostnameOf(name: string): string {
  const h = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return h || 'vm';
}

/** the range of `l3` an address belongs to (its prefix and gateway) */
async function rangeOf(db: Executor, l3Uuid: string, ip: string) {
  const row = await db
    .selectFrom('ipAddresses as a')
    .innerJoin('ipRanges as r', 'r.uuid', 'a.ipRangeUuid')
    .select(['r.prefixLength', 'r.gateway'])
    .where('a.l3NetworkUuid', '=', l3Uuid)
    .where('a.ip', '=', ip)
    .executeTakeFirst();
  if (row) return row;
  // the gateway itself may not be an allocated address of the range (it is the router's NIC
  // address, allocated with allowGateway; older rows may lack the range): find it by gateway
  return db
    .selectFrom('ipRanges')
    .select(['prefixLength', 'gateway'])
    .where('l3NetworkUuid', '=', l3Uuid)
    .where('gateway', '=', ip)
    .executeTakeFirst();
}

function cidrOf(ip: string, prefixLength: number): string | null {
  const parsed = parseIp(ip);
  if (!parsed) return null;
  return `${formatIp(networkOf(parsed.value, prefixLength, parsed.version), parsed.version)}/${prefixLength}`;
}

export async function buildRouterConfig(db: Executor, router: RouterRow): Promise<RouterConfig> {
  const guestL3 = router.l3NetworkUuid;
  const [l3, offering, nics, eips, rules] = await Promise.all([
    db
      .selectFrom('l3Networks')
      .select(['dns', 'domainName', 'mtu'])
      .where('uuid', '=', guestL3)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('virtualRouterOfferings')
      .select('publicL3NetworkUuid')
      .where('uuid', '=', router.offeringUuid)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('vmNics as n')
      .innerJoin('vms as v', 'v.uuid', 'n.vmUuid')
      .select(['n.uuid', 'n.mac', 'n.ip', 'n.isDefault', 'v.name'])
      .where('n.l3NetworkUuid', '=', guestL3)
      .where('n.ip', 'is not', null)
      .$if(router.vmUuid !== null, (q) => q.where('n.vmUuid', '<>', router.vmUuid!))
      .orderBy('n.uuid')
      .execute(),
    db
      .selectFrom('eips as e')
      .innerJoin('vips as p', 'p.uuid', 'e.vipUuid')
      .innerJoin('vmNics as n', 'n.uuid', 'e.vmNicUuid')
      .select(['e.uuid', 'p.ip as publicIp', 'n.ip as guestIp'])
      .where('n.l3NetworkUuid', '=', guestL3)
      .where('e.state', '=', 'Enabled')
      .where('n.ip', 'is not', null)
      .orderBy('e.uuid')
      .execute(),
    db
      .selectFrom('portForwardingRules as f')
      .innerJoin('vips as p', 'p.uuid', 'f.vipUuid')
      .innerJoin('vmNics as n', 'n.uuid', 'f.vmNicUuid')
      .select([
        'f.uuid',
        'f.protocol',
        'p.ip as publicIp',
        'f.vipPortStart',
        'f.vipPortEnd',
        'n.ip as guestIp',
        'f.privatePortStart',
        'f.privatePortEnd',
        'f.allowedCidr',
      ])
      .where('n.l3NetworkUuid', '=', guestL3)
      .where('f.state', '=', 'Enabled')
      .where('n.ip', 'is not', null)
      .orderBy('f.uuid')
      .execute(),
  ]);
  // the host bridges of both legs (a real host plugs the router's legs into them)
  const legs = await db
    .selectFrom('l3Networks as l3')
    .innerJoin('l2Networks as l2', 'l2.uuid', 'l3.l2NetworkUuid')
    .select(['l3.uuid', 'l2.type', 'l2.physicalInterface', 'l2.vlan', 'l2.vni'])
    .where('l3.uuid', 'in', [guestL3, offering.publicL3NetworkUuid])
    .execute();
  const bridgeOf = (l3Uuid: string) => {
    const leg = legs.find((l) => l.uuid === l3Uuid);
    return leg ? { bridgeName: bridgeName(leg) } : {};
  };
  const guestIp = router.guestIp ?? '';
  const publicIp = router.publicIp ?? '';
  const [guestRange, publicRange] = await Promise.all([
    rangeOf(db, guestL3, guestIp),
    rangeOf(db, offering.publicL3NetworkUuid, publicIp),
  ]);
  const guestPrefix = guestRange?.prefixLength ?? 24;
  const guestCidr = cidrOf(guestIp, guestPrefix);
  const dhcp: DhcpEntry[] = nics.map((n) => ({
    nicUuid: n.uuid,
    mac: n.mac,
    ip: n.ip!,
    hostname: hostnameOf(n.name),
    // one default route per VM: only the default NIC's entry names the gateway
    gateway: n.isDefault ? guestIp : null,
    isDefault: n.isDefault,
  }));
  return {
    routerUuid: router.uuid,
    guest: {
      l3NetworkUuid: guestL3,
      ip: guestIp,
      prefixLength: guestPrefix,
      mtu: l3.mtu,
      ...bridgeOf(guestL3),
    },
    public: {
      ip: publicIp,
      prefixLength: publicRange?.prefixLength ?? 24,
      gateway: publicRange?.gateway ?? null,
      ...bridgeOf(offering.publicL3NetworkUuid),
    },
    dns: l3.dns,
    domainName: l3.domainName,
    dhcp,
    snat: publicIp && guestCidr ? { publicIp, guestCidr } : null,
    eips: eips.map((e) => ({ eipUuid: e.uuid, publicIp: e.publicIp, guestIp: e.guestIp! })),
    portForwardings: rules.map((r) => ({
      ruleUuid: r.uuid,
      protocol: r.protocol,
      publicIp: r.publicIp,
      publicPortStart: r.vipPortStart,
      publicPortEnd: r.vipPortEnd,
      guestIp: r.guestIp!,
      privatePortStart: r.privatePortStart,
      privatePortEnd: r.privatePortEnd,
      allowedCidr: r.allowedCidr,
    })),
  };
}
