/**
 * VM NICs in the database (docs/network.md "VM NICs"): making one (its address from IPAM, a
 * random MAC unique on its L2, its security-group memberships), removing a VM's or one NIC's
 * (with their addresses), placing them on a host (`host_uuid`: the host whose network must carry
 * them), and reading them as a hypervisor plugs them (NicSpec).
 *
 * Invariants: every NIC has exactly one address row (owner = the NIC, vm = its VM) while it
 * exists; a NIC's `host_uuid` is its VM's host while the VM runs there, null otherwise; after
 * every change of what a host or router serves, that host or router is re-synced (see sync()).
 */
import { sql } from 'kysely';
import type { NicSpec } from '../../../contract/agent.js';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import { CloudError } from '../../../kernel/errors.js';
import { randomMac } from '../../../kernel/ip.js';
import { bridgeName } from '../../network/host-sync.js';
import { type AllocatedIp, allocateIp } from '../../network/ipam/index.js';
import { hostsAffectedByNics } from '../../network/security-group/host-state.js';
import { syncRoutersOfL3s } from '../../network/virtual-router/sync.js';
import type { FlowDeps } from '../../service.js';

type Executor = Db | Tx;

/** What a NIC is made from (NicParam of a create, or an attach's request). */
export interface NicToMake {
  uuid: string;
  l3NetworkUuid: string;
  l2NetworkUuid: string;
  deviceId: number;
  isDefault: boolean;
  ip: string | null;
  allowGateway: boolean;
  bridgeName: string;
  mtu: number;
}

/** MAC draws before giving up (24 random bits per L2: a collision is rare, two in a row rarer) */
const MAC_TRIES = 8;

/** The NIC's address from IPAM (two statements: the L3's ranges, the INSERT of a free one). */
export function allocateNicIp(
  db: Executor,
  vm: { uuid: string; accountUuid: string },
  nic: Pick<NicToMake, 'uuid' | 'l3NetworkUuid' | 'ip' | 'allowGateway'>,
): Promise<AllocatedIp> {
  return allocateIp(db, {
    l3NetworkUuid: nic.l3NetworkUuid,
    accountUuid: vm.accountUuid,
    usedFor: 'vm-nic',
    ownerUuid: nic.uuid,
    vmUuid: vm.uuid,
    ...(nic.ip ? { ip: nic.ip } : {}),
    ...(nic.allowGateway ? { allowGateway: true } : {}),
  });
}

/**
 * Inserts NICs whose addresses are allocated, all in one statement, each with a random MAC; a
 * MAC taken on its L2 loses quietly (ON CONFLICT … DO NOTHING: no aborted transaction) and only
 * those NICs are inserted again with new draws. Undone by removeNics (by VM or NIC).
 */
export async function insertNics(
  db: Executor,
  vm: { uuid: string; accountUuid: string },
  nics: Array<NicToMake & { address: AllocatedIp }>,
  hostUuid: string | null,
  drawMac: () => string = randomMac,
): Promise<NicSpec[]> {
  const specs: NicSpec[] = [];
  let rest = nics;
  for (let attempt = 0; rest.length > 0; attempt++) {
    if (attempt === MAC_TRIES)
      throw new CloudError(
        'Conflict',
        'VM_NIC_MAC_EXHAUSTED',
        `no free MAC address found on l2 network ${rest[0]!.l2NetworkUuid}`,
      );
    const drawn = rest.map((nic) => ({ nic, mac: drawMac() }));
    const made = await db
      .insertInto('vmNics')
      .values(
        drawn.map(({ nic, mac }) => ({
          uuid: nic.uuid,
          vmUuid: vm.uuid,
          l3NetworkUuid: nic.l3NetworkUuid,
          l2NetworkUuid: nic.l2NetworkUuid,
          accountUuid: vm.accountUuid,
          mac,
          ip: nic.address.ip,
          ipAddressUuid: nic.address.uuid,
          deviceId: nic.deviceId,
          isDefault: nic.isDefault,
          hostUuid,
        })),
      )
      .onConflict((oc) => oc.columns(['l2NetworkUuid', 'mac']).doNothing())
      .returning('uuid')
      .execute();
    const inserted = new Set(made.map((r) => r.uuid));
    for (const { nic, mac } of drawn) {
      if (!inserted.has(nic.uuid)) continue;
      specs.push({
        uuid: nic.uuid,
        mac,
        l3NetworkUuid: nic.l3NetworkUuid,
        ip: nic.address.ip,
        prefixLength: nic.address.prefixLength,
        gateway: nic.address.gateway,
        deviceId: nic.deviceId,
        isDefault: nic.isDefault,
        bridgeName: nic.bridgeName,
        mtu: nic.mtu,
      });
    }
    rest = rest.filter((n) => !inserted.has(n.uuid));
  }
  return specs.sort((a, b) => a.deviceId - b.deviceId);
}

/** Allocates one NIC's address and inserts it (an attach). Undone by removeNics. */
export async function makeNic(
  db: Executor,
  vm: { uuid: string; accountUuid: string },
  nic: NicToMake,
  hostUuid: string | null = null,
): Promise<NicSpec> {
  const address = await allocateNicIp(db, vm, nic);
  const [spec] = await insertNics(db, vm, [{ ...nic, address }], hostUuid);
  return spec!;
}

/** Puts the NICs in the security groups (one statement). */
export async function joinGroups(db: Executor, nicUuids: string[], groupUuids: string[]): Promise<void> {
  if (nicUuids.length === 0 || groupUuids.length === 0) return;
  await db
    .insertInto('vmNicSecurityGroups')
    .values(nicUuids.flatMap((n) => groupUuids.map((g) => ({ vmNicUuid: n, securityGroupUuid: g }))))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** What a removal touched: what must be re-synced. */
export interface Removed {
  /** hosts that carried the removed NICs */
  hostUuids: string[];
  /** virtual-router L3s of the removed NICs (their routers served them) */
  routed: string[];
  /** hosts of the VM's other NICs, when the default NIC moved to one of them */
  defaultHosts: string[];
}

/**
 * Deletes NICs (all of a VM's, or one) and their addresses, in one transaction; memberships go
 * by cascade, and EIPs or port-forwarding rules on them are unmapped. Removing the default NIC
 * of a VM that keeps others makes its lowest device the default (`promoteDefault`); `also` runs
 * in the same transaction. Idempotent.
 */
export async function removeNics(
  db: Db,
  where: { vmUuid: string } | { nicUuid: string },
  opts: { promoteDefault?: boolean; also?: (tx: Tx) => Promise<void> } = {},
): Promise<Removed> {
  return db.transaction().execute(async (tx) => {
    await opts.also?.(tx);
    const q = tx
      .selectFrom('vmNics as n')
      .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
      .select(['n.uuid', 'n.vmUuid', 'n.l3NetworkUuid', 'n.hostUuid', 'n.isDefault', 'l3.provider']);
    const nics = await ('nicUuid' in where
      ? q.where('n.uuid', '=', where.nicUuid)
      : q.where('n.vmUuid', '=', where.vmUuid)
    )
      .forUpdate('n')
      .execute();
    const uuids = nics.map((n) => n.uuid);
    if (uuids.length > 0) {
      await tx.updateTable('eips').set({ vmNicUuid: null }).where('vmNicUuid', 'in', uuids).execute();
      await tx
        .updateTable('portForwardingRules')
        .set({ vmNicUuid: null })
        .where('vmNicUuid', 'in', uuids)
        .execute();
      await tx.deleteFrom('vmNics').where('uuid', 'in', uuids).execute();
    }
    // addresses by their holder: also one whose NIC insert never happened
    if ('vmUuid' in where)
      await tx
        .deleteFrom('ipAddresses')
        .where('vmUuid', '=', where.vmUuid)
        .where('usedFor', '=', 'vm-nic')
        .execute();
    else await tx.deleteFrom('ipAddresses').where('ownerUuid', '=', where.nicUuid).execute();
    let defaultHosts: string[] = [];
    const lostDefault = nics.find((n) => n.isDefault);
    if (opts.promoteDefault && lostDefault) {
      const promoted = await tx
        .updateTable('vmNics')
        .set({ isDefault: true, updatedAt: new Date() })
        .where(
          'uuid',
          '=',
          tx
            .selectFrom('vmNics')
            .select('uuid')
            .where('vmUuid', '=', lostDefault.vmUuid)
            .orderBy('deviceId')
            .limit(1),
        )
        .returning('hostUuid')
        .execute();
      defaultHosts = promoted.flatMap((p) => (p.hostUuid ? [p.hostUuid] : []));
    }
    return {
      hostUuids: [...new Set(nics.flatMap((n) => (n.hostUuid ? [n.hostUuid] : [])))],
      routed: [...new Set(nics.filter((n) => n.provider === 'virtual-router').map((n) => n.l3NetworkUuid))],
      defaultHosts,
    };
  });
}

/** Where a VM's NICs were, and what serves them. */
export interface Placed {
  /** hosts that carried them before */
  before: string[];
  l3NetworkUuids: string[];
  /** those of the L3s whose provider is a virtual router */
  routed: string[];
}

/** Sets the host carrying the VM's NICs (null: none), one statement. */
export async function placeNics(db: Executor, vmUuid: string, hostUuid: string | null): Promise<Placed> {
  const { rows } = await sql<{ before: string | null; l3: string; provider: string | null }>`
    update vm_nics n set host_uuid = ${hostUuid}, updated_at = now()
    from (select uuid, host_uuid from vm_nics where vm_uuid = ${vmUuid} for update) old
    where n.uuid = old.uuid
    returning old.host_uuid as before, n.l3_network_uuid as l3,
      (select provider from l3_networks l where l.uuid = n.l3_network_uuid) as provider`.execute(db);
  return {
    before: [...new Set(rows.flatMap((r) => (r.before ? [r.before] : [])))],
    l3NetworkUuids: [...new Set(rows.map((r) => r.l3))],
    routed: [...new Set(rows.filter((r) => r.provider === 'virtual-router').map((r) => r.l3))],
  };
}

/**
 * The hosts whose security-group state changes when these NICs join or leave their groups, or
 * change address: the hosts of the groups' members and of groups naming them as remote group
 * (their address sets list every member's address, placed or not). Read it before a leave.
 */
export function peerHosts(db: Db, nicUuids: string[]): Promise<string[]> {
  return hostsAffectedByNics(db, nicUuids);
}

/**
 * Re-syncs what serves these NICs: the hosts' network state (bridges, flat DHCP, security
 * groups) and the routers of the virtual-router L3s. Idempotent (full state), so rollbacks call
 * it again. `hosts` must answer; `leaving` are synced best-effort — hosts being left (a VM must
 * be able to leave a dead host) and security-group peers (a peer that misses a change gets its
 * whole state when it reconnects).
 */
export async function syncNetwork(
  db: Db,
  deps: FlowDeps,
  what: {
    hosts?: Array<string | null | undefined>;
    leaving?: Array<string | null | undefined>;
    routed: string[];
  },
): Promise<void> {
  const hosts = new Set((what.hosts ?? []).filter((h): h is string => !!h));
  const leaving = (what.leaving ?? []).filter((h): h is string => !!h && !hosts.has(h));
  await Promise.all([
    hosts.size > 0 ? deps.network.sync(hosts) : undefined,
    leaving.length > 0 ? deps.network.sync(leaving, { bestEffort: true }) : undefined,
    what.routed.length > 0 ? syncRoutersOfL3s(db, deps, what.routed) : undefined,
  ]);
}

/** The VM's NICs (or one of them) as the hypervisor plugs them, eth0 first. */
export async function nicSpecs(db: Executor, vmUuid: string, nicUuid?: string): Promise<NicSpec[]> {
  let q = db
    .selectFrom('vmNics as n')
    .innerJoin('l3Networks as l3', 'l3.uuid', 'n.l3NetworkUuid')
    .innerJoin('l2Networks as l2', 'l2.uuid', 'n.l2NetworkUuid')
    .leftJoin('ipAddresses as a', 'a.uuid', 'n.ipAddressUuid')
    .leftJoin('ipRanges as r', 'r.uuid', 'a.ipRangeUuid')
    .select([
      'n.uuid',
      'n.mac',
      'n.l3NetworkUuid',
      'n.ip',
      'n.deviceId',
      'n.isDefault',
      'l3.mtu',
      'l2.type',
      'l2.physicalInterface',
      'l2.vlan',
      'l2.vni',
      'r.prefixLength',
      'r.gateway',
    ])
    .where('n.vmUuid', '=', vmUuid);
  if (nicUuid) q = q.where('n.uuid', '=', nicUuid);
  const rows = await q.orderBy('n.deviceId').execute();
  return rows.map((r) => ({
    uuid: r.uuid,
    mac: r.mac,
    l3NetworkUuid: r.l3NetworkUuid,
    ip: r.ip,
    prefixLength: r.prefixLength,
    gateway: r.gateway,
    deviceId: r.deviceId,
    isDefault: r.isDefault,
    bridgeName: bridgeName(r),
    mtu: r.mtu,
  }));
}
