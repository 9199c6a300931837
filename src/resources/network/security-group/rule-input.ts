/**
 * Validation of a new security-group rule, every bad field reported at once (a bad request
 * changes nothing). Ports only for tcp/udp (none = every port; portEnd defaults to portStart);
 * remoteCidr is a strict CIDR of the rule's IP version, stored canonical (so '0:0::/0' and
 * '::/0' are the same rule for the duplicate check); ipVersion defaults to the remoteCidr's
 * version, else 4; a remote group is a group of the same account, and excludes remoteCidr.
 */
import type { Db } from '../../../db/pool.js';
import type { FieldProblem } from '../../../kernel/errors.js';
import { formatIp, parseCidr } from '../../../kernel/ip.js';

export interface RuleFields {
  direction: 'ingress' | 'egress';
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  portStart: number | null;
  portEnd: number | null;
  remoteCidr: string | null;
  remoteSecurityGroupUuid: string | null;
  ipVersion: 4 | 6;
  description: string | null;
}

/** Returns the rule's columns, or the problems of the body. */
export async function ruleFields(
  db: Db,
  groupAccountUuid: string,
  body: Record<string, unknown>,
): Promise<{ fields: RuleFields; problems: FieldProblem[] }> {
  const problems: FieldProblem[] = [];
  const protocol = body.protocol as RuleFields['protocol'];
  const portStart = (body.portStart as number | undefined) ?? null;
  let portEnd = (body.portEnd as number | undefined) ?? null;
  if (protocol === 'tcp' || protocol === 'udp') {
    if (portStart === null && portEnd !== null)
      problems.push({ field: 'portStart', problem: 'required with portEnd' });
    if (portStart !== null) {
      portEnd ??= portStart;
      if (portEnd < portStart)
        problems.push({ field: 'portEnd', problem: `${portEnd} is below portStart ${portStart}` });
    }
  } else {
    for (const field of ['portStart', 'portEnd'] as const)
      if (body[field] !== undefined)
        problems.push({ field, problem: `ports apply to tcp and udp only, not to ${protocol}` });
  }

  const givenVersion = body.ipVersion as 4 | 6 | undefined;
  let ipVersion: 4 | 6 = givenVersion ?? 4;
  let remoteCidr: string | null = null;
  if (body.remoteCidr !== undefined) {
    const cidr = parseCidr(String(body.remoteCidr));
    if (!cidr)
      problems.push({
        field: 'remoteCidr',
        problem: `'${body.remoteCidr}' is not a CIDR (an address with no host bits set, a slash, a prefix length)`,
      });
    else if (givenVersion !== undefined && cidr.version !== givenVersion)
      problems.push({
        field: 'remoteCidr',
        problem: `is IPv${cidr.version} but ipVersion is ${givenVersion}`,
      });
    else {
      ipVersion = cidr.version;
      remoteCidr = `${formatIp(cidr.network, cidr.version)}/${cidr.prefix}`;
    }
  }

  const remoteGroup = (body.remoteSecurityGroupUuid as string | undefined) ?? null;
  if (remoteGroup !== null) {
    if (body.remoteCidr !== undefined)
      problems.push({
        field: 'remoteSecurityGroupUuid',
        problem: 'give remoteCidr or remoteSecurityGroupUuid, not both',
      });
    const row = await db
      .selectFrom('securityGroups')
      .select('accountUuid')
      .where('uuid', '=', remoteGroup)
      .executeTakeFirst();
    if (!row || row.accountUuid !== groupAccountUuid)
      problems.push({
        field: 'remoteSecurityGroupUuid',
        problem: `no security group ${remoteGroup} in the account of the rule’s group`,
      });
  }

  return {
    fields: {
      direction: body.direction as RuleFields['direction'],
      protocol,
      portStart,
      portEnd,
      remoteCidr,
      remoteSecurityGroupUuid: remoteGroup,
      ipVersion,
      description: (body.description as string | undefined) ?? null,
    },
    problems,
  };
}
