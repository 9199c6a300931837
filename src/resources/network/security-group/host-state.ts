/**
 * The security-group state of one host: for every NIC placed on it that belongs to a group, the
 * union of its groups' rules, with remote groups expanded to their members' addresses (what an
 * agent turns into nftables sets). A NIC in no group is not listed: it is not filtered.
 * A remote group's addresses are those of all its members, placed on a host or not (Neutron's
 * choice): a VM stopping or moving changes only its own host's state, not its peers'. A rule
 * carries only the members' addresses of its own IP version.
 * Also which hosts a change to some groups concerns (the fan-out).
 */
import type { SgNic, SgRule } from '../../../contract/agent.js';
import type { Db } from '../../../db/pool.js';

export async function sgNicsForHost(db: Db, hostUuid: string): Promise<SgNic[]> {
  const memberships = await db
    .selectFrom('vmNics as n')
    .innerJoin('vmNicSecurityGroups as m', 'm.vmNicUuid', 'n.uuid')
    .select(['n.uuid', 'n.mac', 'n.ip', 'm.securityGroupUuid'])
    .where('n.hostUuid', '=', hostUuid)
    .orderBy('n.uuid')
    .orderBy('m.securityGroupUuid')
    .execute();
  if (memberships.length === 0) return [];

  const groupUuids = [...new Set(memberships.map((m) => m.securityGroupUuid))];
  const rules = await db
    .selectFrom('securityGroupRules')
    .selectAll()
    .where('securityGroupUuid', 'in', groupUuids)
    .orderBy('uuid')
    .execute();
  const remoteGroups = [
    ...new Set(rules.flatMap((r) => (r.remoteSecurityGroupUuid ? [r.remoteSecurityGroupUuid] : []))),
  ];
  const members = new Map<string, string[]>();
  if (remoteGroups.length > 0) {
    const rows = await db
      .selectFrom('vmNicSecurityGroups as m')
      .innerJoin('vmNics as n', 'n.uuid', 'm.vmNicUuid')
      .select(['m.securityGroupUuid', 'n.ip'])
      .where('m.securityGroupUuid', 'in', remoteGroups)
      .where('n.ip', 'is not', null)
      .orderBy('n.ip')
      .execute();
    for (const r of rows) {
      const list = members.get(r.securityGroupUuid) ?? [];
      list.push(r.ip!.includes(':') ? `${r.ip}/128` : `${r.ip}/32`);
      members.set(r.securityGroupUuid, list);
    }
  }

  const rulesByGroup = new Map<string, SgRule[]>();
  for (const r of rules) {
    const list = rulesByGroup.get(r.securityGroupUuid) ?? [];
    list.push({
      ruleUuid: r.uuid,
      direction: r.direction,
      protocol: r.protocol,
      portStart: r.portStart,
      portEnd: r.portEnd,
      ipVersion: r.ipVersion,
      remoteCidrs: r.remoteSecurityGroupUuid
        ? (members.get(r.remoteSecurityGroupUuid) ?? []).filter(
            (c) => c.includes(':') === (r.ipVersion === 6),
          )
        : r.remoteCidr
          ? [r.remoteCidr]
          : null,
    });
    rulesByGroup.set(r.securityGroupUuid, list);
  }

  const byNic = new Map<string, SgNic>();
  for (const m of memberships) {
    let nic = byNic.get(m.uuid);
    if (!nic) {
      nic = { nicUuid: m.uuid, mac: m.mac, ip: m.ip, securityGroupUuids: [], rules: [] };
      byNic.set(m.uuid, nic);
    }
    nic.securityGroupUuids.push(m.securityGroupUuid);
    nic.rules.push(...(rulesByGroup.get(m.securityGroupUuid) ?? []));
  }
  return [...byNic.values()];
}

/**
 * The hosts running a member NIC of one of these groups: what a change to the groups' own rules
 * alters (a rule change leaves the peers' state alone).
 */
export async function hostsRunningMembers(db: Db, groupUuids: string[]): Promise<string[]> {
  if (groupUuids.length === 0) return [];
  const rows = await db
    .selectFrom('vmNicSecurityGroups as m')
    .innerJoin('vmNics as n', 'n.uuid', 'm.vmNicUuid')
    .select('n.hostUuid')
    .distinct()
    .where('m.securityGroupUuid', 'in', groupUuids)
    .where('n.hostUuid', 'is not', null)
    .execute();
  return rows.map((r) => r.hostUuid!).sort();
}

/**
 * The hosts whose state a change to these groups' membership alters: hosts running a member NIC
 * of one of them, or of a group with a rule whose remote group is one of them (its address set
 * changed). A change that removes members must union this set from before and after the change.
 */
export async function hostsAffectedByGroups(db: Db, groupUuids: string[]): Promise<string[]> {
  if (groupUuids.length === 0) return [];
  const referencing = await db
    .selectFrom('securityGroupRules')
    .select('securityGroupUuid')
    .distinct()
    .where('remoteSecurityGroupUuid', 'in', groupUuids)
    .execute();
  return hostsRunningMembers(db, [
    ...new Set([...groupUuids, ...referencing.map((r) => r.securityGroupUuid)]),
  ]);
}

/**
 * The hosts whose state changes when these NICs join or leave their groups (VM create with
 * securityGroupUuids, NIC attach, detach, expunge): the hosts of their groups' members and of the
 * groups whose rules name those groups as remote group. For a leave, read it before the rows go.
 */
export async function hostsAffectedByNics(db: Db, nicUuids: string[]): Promise<string[]> {
  if (nicUuids.length === 0) return [];
  const groups = await db
    .selectFrom('vmNicSecurityGroups')
    .select('securityGroupUuid')
    .distinct()
    .where('vmNicUuid', 'in', nicUuids)
    .execute();
  return hostsAffectedByGroups(
    db,
    groups.map((g) => g.securityGroupUuid),
  );
}
