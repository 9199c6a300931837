/**
 * A VM create's networking fields, checked at admission (docs/network.md "VM NICs"): every L3
 * exists and the caller may use it (its own, or shared; the admin: any), is Enabled, is listed
 * once and has an IP range; static addresses parse, have the L3's IP version and name a listed
 * L3 (whether they lie in a range and are free is IPAM's answer, at allocation); security groups
 * are the caller's own. Every problem is reported at once, with the field it is about.
 */

import type { Db } from '../../../db/pool.js';
import type { Caller } from '../../../kernel/caller.js';
import type { FieldProblem } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { parseIp } from '../../../kernel/ip.js';
import { cachedRow } from '../../admission-cache.js';
import { bridgeName } from '../../network/host-sync.js';
import type { NicParam } from '../vm/model.js';

export interface NicRequest {
  l3NetworkUuids?: string[];
  defaultL3NetworkUuid?: string;
  staticIps?: Array<{ l3NetworkUuid: string; ip: string; allowGateway?: boolean }>;
  securityGroupUuids?: string[];
}

export interface ResolvedNics {
  nics: NicParam[];
  securityGroupUuids: string[];
  /** the L2s the VM's host must have (placement) */
  l2NetworkUuids: string[];
}

/** What admission needs of L3s (and their L2s), read in one query. */
async function readL3s(db: Db, uuids: string[]) {
  return db
    .selectFrom('l3Networks as l3')
    .innerJoin('l2Networks as l2', 'l2.uuid', 'l3.l2NetworkUuid')
    .select((eb) => [
      'l3.uuid',
      'l3.name',
      'l3.accountUuid',
      'l3.shared',
      'l3.state',
      'l3.provider',
      'l3.mtu',
      'l3.ipVersion',
      'l3.zoneUuid',
      'l3.l2NetworkUuid',
      'l2.type as l2Type',
      'l2.physicalInterface',
      'l2.vlan',
      'l2.vni',
      eb
        .exists(
          eb
            .selectFrom('ipRanges as r')
            .select('r.uuid')
            .whereRef('r.l3NetworkUuid', '=', 'l3.uuid')
            .where('r.type', '=', 'normal'),
        )
        .as('hasRange'),
    ])
    .where('l3.uuid', 'in', uuids)
    .execute();
}

/**
 * The L3s' facts, through the admission cache (admission-cache.ts): an Enabled L3 with ranges
 * is read once per burst; anything else is read fresh.
 */
export async function loadL3s(db: Db, uuids: string[]) {
  if (uuids.length === 0) return [];
  const rows = await Promise.all(
    uuids.map((u) =>
      cachedRow(
        u,
        async () => (await readL3s(db, [u]))[0],
        (l3) => l3.state === 'Enabled' && Boolean(l3.hasRange),
      ),
    ),
  );
  return rows.filter((r): r is NonNullable<typeof r> => r !== undefined);
}

export type L3Facts = Awaited<ReturnType<typeof readL3s>>[number];

/** The bridge and MTU a NIC on this L3 is plugged with. */
export function plugOf(l3: L3Facts): { bridgeName: string; mtu: number } {
  return {
    bridgeName: bridgeName({
      type: l3.l2Type,
      physicalInterface: l3.physicalInterface,
      vlan: l3.vlan,
      vni: l3.vni,
    }),
    mtu: l3.mtu,
  };
}

/** Why `caller` may not put a NIC on `l3` (undefined: it may). Unusable reads as not found. */
export function l3Refusal(caller: Caller, uuid: string, l3: L3Facts | undefined): string | undefined {
  if (!l3 || !(caller.isAdmin || l3.shared || l3.accountUuid === caller.accountUuid))
    return `no l3 network ${uuid}`;
  if (l3.state !== 'Enabled') return `l3 network ${l3.name} is ${l3.state}; it must be Enabled`;
  if (!l3.hasRange) return `l3 network ${l3.name} has no IP range: add one before putting NICs on it`;
  return undefined;
}

/** Checks the networking fields; pushes every problem; returns the NICs to make. */
export async function resolveNics(
  db: Db,
  caller: Caller,
  req: NicRequest,
  problems: FieldProblem[],
): Promise<ResolvedNics> {
  const bad = (field: string, problem: string) => problems.push({ field, problem });
  const wanted = req.l3NetworkUuids ?? [];
  const groups = req.securityGroupUuids ?? [];
  const [l3s, owned] = await Promise.all([
    loadL3s(db, [...new Set(wanted)]),
    groups.length === 0
      ? Promise.resolve([])
      : db.selectFrom('securityGroups').select(['uuid', 'accountUuid']).where('uuid', 'in', groups).execute(),
  ]);
  const byUuid = new Map(l3s.map((l) => [l.uuid, l]));

  const seen = new Set<string>();
  for (const [i, uuid] of wanted.entries()) {
    if (seen.has(uuid)) bad(`l3NetworkUuids[${i}]`, `l3 network ${uuid} is listed twice: one NIC per L3`);
    seen.add(uuid);
    const refused = l3Refusal(caller, uuid, byUuid.get(uuid));
    if (refused) bad(`l3NetworkUuids[${i}]`, refused);
  }
  const zones = new Set(l3s.map((l) => l.zoneUuid));
  if (zones.size > 1) bad('l3NetworkUuids', 'the L3 networks are in different zones; a VM runs in one');
  if (req.defaultL3NetworkUuid !== undefined && !seen.has(req.defaultL3NetworkUuid))
    bad('defaultL3NetworkUuid', `l3 network ${req.defaultL3NetworkUuid} is not one of l3NetworkUuids`);

  const staticIp = new Map<string, { ip: string; allowGateway: boolean }>();
  for (const [i, s] of (req.staticIps ?? []).entries()) {
    const field = `staticIps[${i}]`;
    const parsed = parseIp(s.ip);
    const l3 = byUuid.get(s.l3NetworkUuid);
    if (!seen.has(s.l3NetworkUuid))
      bad(`${field}.l3NetworkUuid`, `${s.l3NetworkUuid} is not one of l3NetworkUuids`);
    else if (staticIp.has(s.l3NetworkUuid)) bad(field, `a second address for l3 network ${s.l3NetworkUuid}`);
    if (!parsed) bad(`${field}.ip`, `${s.ip} is not an IP address`);
    else if (l3 && parsed.version !== l3.ipVersion)
      bad(`${field}.ip`, `${s.ip} is IPv${parsed.version}; l3 network ${l3.name} is IPv${l3.ipVersion}`);
    staticIp.set(s.l3NetworkUuid, { ip: s.ip, allowGateway: s.allowGateway === true });
  }

  for (const [i, uuid] of groups.entries()) {
    const g = owned.find((o) => o.uuid === uuid);
    if (!g || g.accountUuid !== caller.accountUuid)
      bad(`securityGroupUuids[${i}]`, `no security group ${uuid} of this account`);
  }
  if (groups.length > 0 && wanted.length === 0)
    bad('securityGroupUuids', 'the VM has no NIC to put in a group: give l3NetworkUuids');

  const defaultL3 = req.defaultL3NetworkUuid ?? wanted[0];
  const nics: NicParam[] = [];
  for (const [deviceId, uuid] of wanted.entries()) {
    const l3 = byUuid.get(uuid);
    if (!l3) continue;
    const s = staticIp.get(uuid);
    nics.push({
      uuid: newId(),
      l3NetworkUuid: uuid,
      l2NetworkUuid: l3.l2NetworkUuid,
      deviceId,
      isDefault: uuid === defaultL3,
      ip: s?.ip ?? null,
      allowGateway: s?.allowGateway ?? false,
      provider: l3.provider,
      ...plugOf(l3),
    });
  }
  return {
    nics,
    securityGroupUuids: groups,
    l2NetworkUuids: [...new Set(nics.map((n) => n.l2NetworkUuid))],
  };
}
