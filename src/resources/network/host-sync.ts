/**
 * Re-syncs hosts' network configuration: bridges, flat networks' DHCP/DNS, security-group rules.
 * Each command carries the WHOLE state of its part of one host, computed from the database
 * (the NICs whose `host_uuid` is the host), so a sync is idempotent and repairs any drift.
 *
 * Ordering (docs/network.md "Host network sync"): every run takes a version from the sequence
 * `network_config_version` BEFORE it reads the state, and hosts apply only newer versions. The
 * newest version was read after every change committed before it was taken, and every change is
 * followed by its own sync, so the newest state wins even when syncs from several nodes cross.
 * Within this node, syncs of one host run one at a time: requests that arrive while a run is in
 * flight are served together by the next run (which starts after them), so a burst of VM creates
 * on one host costs a few syncs, not one each.
 */

import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { BridgeSpec, DhcpNetwork } from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';
import type { HostRoute, L2Type } from '../../db/schema.js';
import type { DriverRegistry } from '../../drivers/port.js';
import { sgNicsForHost } from './security-group/host-state.js';

/** The Linux bridge of an L2 on every host (≤ 15 characters: the kernel's interface name limit). */
export function bridgeName(l2: {
  type: L2Type;
  physicalInterface: string | null;
  vlan: number | null;
  vni: number | null;
}): string {
  switch (l2.type) {
    case 'no-vlan':
      return `br_${l2.physicalInterface}`.slice(0, 15);
    case 'vlan':
      return `br_${(l2.physicalInterface ?? '').slice(0, 6)}_${l2.vlan}`;
    case 'vxlan':
      return `br_vx_${l2.vni}`;
  }
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface HostQueue {
  waiters: Waiter[];
  active: boolean;
}

/** One row per NIC placed on the host, with what its bridge and DHCP entry need. */
interface PlacedNic {
  nicUuid: string;
  mac: string;
  ip: string | null;
  isDefault: boolean;
  vmName: string;
  l3NetworkUuid: string;
  l2NetworkUuid: string;
  l2Type: L2Type;
  physicalInterface: string | null;
  vlan: number | null;
  vni: number | null;
  provider: string | null;
  dns: string[];
  domainName: string | null;
  mtu: number;
  hostRoutes: HostRoute[];
  prefixLength: number | null;
  gateway: string | null;
  /** the NIC is in a security group */
  inGroup: boolean;
}

export class HostNetworkSync {
  private readonly queues = new Map<string, HostQueue>();

  constructor(
    private readonly db: Db,
    private readonly drivers: DriverRegistry,
    private readonly log: Logger,
  ) {}

  /**
   * Re-syncs the hosts; resolves once a sync that started after this call finished on each.
   * `bestEffort`: a host that cannot be reached is logged, not thrown (leaving a host: its
   * reconnect re-syncs everything anyway).
   */
  async sync(hostUuids: Iterable<string>, opts: { bestEffort?: boolean } = {}): Promise<void> {
    const hosts = [...new Set(hostUuids)];
    const results = await Promise.allSettled(hosts.map((h) => this.request(h)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    if (!opts.bestEffort) throw failed.reason;
    this.log.warn({ err: failed.reason, hosts }, 'host network sync failed; the host re-syncs on reconnect');
  }

  private request(host: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let q = this.queues.get(host);
      if (!q) {
        q = { waiters: [], active: false };
        this.queues.set(host, q);
      }
      q.waiters.push({ resolve, reject });
      if (!q.active) void this.drain(host, q);
    });
  }

  private async drain(host: string, q: HostQueue): Promise<void> {
    q.active = true;
    while (q.waiters.length > 0) {
      const batch = q.waiters.splice(0);
      try {
        await this.runOnce(host);
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    q.active = false;
    this.queues.delete(host);
  }

  private async runOnce(hostUuid: string): Promise<void> {
    // the version first (with the host's address, one round trip), then the state: see the
    // module comment for why the version must be taken before the state is read
    const host = await this.db
      .selectFrom('hosts')
      .select([
        'uuid',
        'managementIp',
        'hypervisorType',
        sql<string>`nextval('network_config_version')::text`.as('version'),
      ])
      .where('uuid', '=', hostUuid)
      .executeTakeFirst();
    if (!host) return; // deleted: nothing to configure
    const version = Number(host.version);
    const nics = await placedNics(this.db, hostUuid);
    // most NICs are in no group: their host's firewall state is empty without another query
    const sg = nics.some((n) => n.inGroup) ? await sgNicsForHost(this.db, hostUuid) : [];
    const driver = this.drivers.for(host.hypervisorType);
    const address = { uuid: host.uuid, managementIp: host.managementIp, hypervisorType: host.hypervisorType };
    const bridges = await withPeers(this.db, hostUuid, bridgesOf(nics));
    await driver.send(address, 'network.ensure-bridges', { version, bridges });
    await driver.send(address, 'dhcp.set-entries', { version, networks: dhcpOf(nics) });
    await driver.send(address, 'sg.apply', { version, nics: sg });
  }
}

/**
 * VXLAN bridges get `peers`: the addresses (management IPs, which are the VTEPs) of the other
 * Connected hosts in the clusters the L2 is attached to. Unicast flooding to exactly these: a
 * host that leaves drops out at the next sync; one that joins is pushed to the others by the
 * host chains (`vxlanPeerHosts`).
 */
async function withPeers(db: Db, hostUuid: string, bridges: BridgeSpec[]): Promise<BridgeSpec[]> {
  const vxlan = bridges.filter((b) => b.type === 'vxlan').map((b) => b.l2NetworkUuid);
  if (vxlan.length === 0) return bridges;
  const rows = await db
    .selectFrom('l2NetworkClusters as c')
    .innerJoin('hosts as h', 'h.clusterUuid', 'c.clusterUuid')
    .select(['c.l2NetworkUuid', 'h.managementIp'])
    .where('c.l2NetworkUuid', 'in', vxlan)
    .where('h.uuid', '<>', hostUuid)
    .where('h.status', '=', 'Connected')
    .orderBy('h.managementIp')
    .execute();
  const byL2 = new Map<string, string[]>();
  for (const r of rows) {
    const list = byL2.get(r.l2NetworkUuid) ?? [];
    if (!list.includes(r.managementIp)) list.push(r.managementIp);
    byL2.set(r.l2NetworkUuid, list);
  }
  return bridges.map((b) => (b.type === 'vxlan' ? { ...b, peers: byL2.get(b.l2NetworkUuid) ?? [] } : b));
}

/** The other Connected hosts that carry a VXLAN L2 with `hostUuid` (their peer lists name it). */
export async function vxlanPeerHosts(db: Db, hostUuid: string): Promise<string[]> {
  const rows = await db
    .selectFrom('hosts as me')
    .innerJoin('l2NetworkClusters as mine', 'mine.clusterUuid', 'me.clusterUuid')
    .innerJoin('l2Networks as l2', 'l2.uuid', 'mine.l2NetworkUuid')
    .innerJoin('l2NetworkClusters as theirs', 'theirs.l2NetworkUuid', 'l2.uuid')
    .innerJoin('hosts as h', 'h.clusterUuid', 'theirs.clusterUuid')
    .select('h.uuid')
    .distinct()
    .where('me.uuid', '=', hostUuid)
    .where('l2.type', '=', 'vxlan')
    .where('h.uuid', '<>', hostUuid)
    .where('h.status', '=', 'Connected')
    .execute();
  return rows.map((r) => r.uuid);
}

async function placedNics(db: Db, hostUuid: string): Promise<PlacedNic[]> {
  return (
    db
      .selectFrom('vmNics as n')
      .innerJoin('vms as v', 'v.uuid', 'n.vmUuid')
      .innerJoin('l2Networks as l2', 'l2.uuid', 'n.l2NetworkUuid')
      .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
      .leftJoin('ipAddresses as a', 'a.uuid', 'n.ipAddressUuid')
      .leftJoin('ipRanges as r', 'r.uuid', 'a.ipRangeUuid')
      .select([
        'n.uuid as nicUuid',
        'n.mac',
        'n.ip',
        'n.isDefault',
        'v.name as vmName',
        'n.l3NetworkUuid',
        'n.l2NetworkUuid',
        'l2.type as l2Type',
        'l2.physicalInterface',
        'l2.vlan',
        'l2.vni',
        'l3.provider',
        'l3.dns',
        'l3.domainName',
        'l3.mtu',
        'l3.hostRoutes',
        'r.prefixLength',
        'r.gateway',
        sql<boolean>`exists (select 1 from vm_nic_security_groups m where m.vm_nic_uuid = n.uuid)`.as(
          'inGroup',
        ),
      ])
      // a VM live-migrating here counts too: its incoming QEMU plugs its taps into the bridges,
      // and its rules and DHCP entries must be in place before the switch-over (migrate.ts)
      .where((eb) => eb.or([eb('n.hostUuid', '=', hostUuid), eb('v.migrationTargetUuid', '=', hostUuid)]))
      .orderBy('n.uuid')
      .execute() as Promise<PlacedNic[]>
  );
}

function bridgesOf(nics: PlacedNic[]): BridgeSpec[] {
  const byL2 = new Map<string, BridgeSpec>();
  for (const n of nics) {
    const l2 = { type: n.l2Type, physicalInterface: n.physicalInterface, vlan: n.vlan, vni: n.vni };
    const current = byL2.get(n.l2NetworkUuid);
    // a bridge carries the largest MTU of the L3s on it
    if (current && current.mtu >= n.mtu) continue;
    byL2.set(n.l2NetworkUuid, {
      l2NetworkUuid: n.l2NetworkUuid,
      type: n.l2Type,
      bridgeName: bridgeName(l2),
      physicalInterface: n.physicalInterface,
      vlan: n.vlan,
      vni: n.vni,
      mtu: n.mtu,
    });
  }
  return [...byL2.values()].sort((a, b) => a.l2NetworkUuid.localeCompare(b.l2NetworkUuid));
}

/** flat networks only: a virtual-router network's DHCP is the router's */
function dhcpOf(nics: PlacedNic[]): DhcpNetwork[] {
  const byL3 = new Map<string, DhcpNetwork>();
  for (const n of nics) {
    if (n.provider !== 'flat' || !n.ip) continue;
    let net = byL3.get(n.l3NetworkUuid);
    if (!net) {
      net = {
        l3NetworkUuid: n.l3NetworkUuid,
        bridgeName: bridgeName({
          type: n.l2Type,
          physicalInterface: n.physicalInterface,
          vlan: n.vlan,
          vni: n.vni,
        }),
        prefixLength: n.prefixLength ?? 0,
        gateway: n.gateway,
        dns: n.dns,
        domainName: n.domainName,
        mtu: n.mtu,
        hostRoutes: n.hostRoutes,
        entries: [],
      };
      byL3.set(n.l3NetworkUuid, net);
    }
    net.entries.push({
      nicUuid: n.nicUuid,
      mac: n.mac,
      ip: n.ip,
      hostname: n.vmName,
      gateway: n.isDefault ? n.gateway : null,
      isDefault: n.isDefault,
    });
  }
  return [...byL3.values()].sort((a, b) => a.l3NetworkUuid.localeCompare(b.l3NetworkUuid));
}
