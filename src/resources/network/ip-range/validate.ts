/**
 * An IP range request, checked and normalised without I/O: `cidr`, or `startIp` + `endIp` with
 * `prefixLength` | `netmask` (+ `gateway`). Every bad field is reported at once. What needs the
 * L3's other ranges (overlaps, a reserved range inside a normal one) is checked by the service
 * under the L3's row lock.
 */
import type { FieldProblem } from '../../../kernel/errors.js';
import {
  type Cidr,
  cidrRange,
  formatIp,
  type IpVersion,
  netmaskToPrefix,
  parseCidr,
  parseIp,
  prefixToNetmask,
  usableRange,
} from '../../../kernel/ip.js';

export interface RangeInput {
  type?: 'normal' | 'reserved';
  cidr?: string;
  startIp?: string;
  endIp?: string;
  gateway?: string;
  netmask?: string;
  prefixLength?: number;
}

export interface RangeSpec {
  ipVersion: IpVersion;
  first: bigint;
  last: bigint;
  startIp: string;
  endIp: string;
  gateway: string | null;
  gatewayValue: bigint | null;
  /** null: a reserved range given without one (it takes its normal range's) */
  prefixLength: number | null;
  netmask: string | null;
}

export type RangeCheck = { ok: true; spec: RangeSpec } | { ok: false; problems: FieldProblem[] };

const bits = (v: IpVersion) => (v === 4 ? 32 : 128);

/** prefixLength and/or netmask → one prefix (problems when absent, inconsistent or out of range). */
function prefixOf(input: RangeInput, version: IpVersion, required: boolean, problems: FieldProblem[]) {
  let prefix: number | undefined;
  if (input.netmask !== undefined) {
    if (version !== 4) problems.push({ field: 'netmask', problem: 'only for IPv4 (use prefixLength)' });
    else {
      prefix = netmaskToPrefix(input.netmask);
      if (prefix === undefined)
        problems.push({ field: 'netmask', problem: `'${input.netmask}' is not a netmask` });
    }
  }
  if (input.prefixLength !== undefined) {
    if (input.prefixLength > bits(version))
      problems.push({ field: 'prefixLength', problem: `at most ${bits(version)} for IPv${version}` });
    else if (prefix !== undefined && prefix !== input.prefixLength)
      problems.push({
        field: 'prefixLength',
        problem: `/${input.prefixLength} does not match netmask ${input.netmask}`,
      });
    else prefix = input.prefixLength;
  }
  if (prefix === undefined && required && input.netmask === undefined && input.prefixLength === undefined)
    problems.push({ field: 'prefixLength', problem: 'give prefixLength or netmask' });
  return prefix;
}

function address(field: string, text: string | undefined, version: IpVersion, problems: FieldProblem[]) {
  if (text === undefined) return undefined;
  const ip = parseIp(text);
  if (!ip) problems.push({ field, problem: `'${text}' is not an IP address` });
  else if (ip.version !== version)
    problems.push({ field, problem: `must be an IPv${version} address, as the L3 network` });
  else return ip.value;
  return undefined;
}

export function checkRange(input: RangeInput, version: IpVersion): RangeCheck {
  const problems: FieldProblem[] = [];
  const reserved = input.type === 'reserved';
  const hasBounds = input.startIp !== undefined || input.endIp !== undefined;
  if (input.cidr !== undefined && hasBounds)
    problems.push({ field: 'cidr', problem: 'give cidr, or startIp and endIp, not both' });
  if (input.cidr === undefined && !hasBounds)
    problems.push({ field: 'cidr', problem: 'give cidr, or startIp and endIp' });
  if (reserved && input.gateway !== undefined)
    problems.push({ field: 'gateway', problem: 'a reserved range has no gateway' });

  let subnet: Cidr | undefined;
  let first: bigint | undefined;
  let last: bigint | undefined;
  let prefix: number | undefined;
  if (input.cidr !== undefined && !hasBounds) {
    const c = parseCidr(input.cidr);
    if (!c)
      problems.push({
        field: 'cidr',
        problem: `'${input.cidr}' is not a CIDR (e.g. 10.0.0.0/24, host bits zero)`,
      });
    else if (c.version !== version)
      problems.push({ field: 'cidr', problem: `must be an IPv${version} CIDR, as the L3 network` });
    else {
      subnet = c;
      prefix = c.prefix;
      const given = prefixOf(input, version, false, problems);
      if (given !== undefined && given !== c.prefix)
        problems.push({ field: 'prefixLength', problem: `/${given} does not match cidr ${input.cidr}` });
      ({ first, last } = usableRange(c));
    }
  } else if (hasBounds) {
    if (input.startIp === undefined) problems.push({ field: 'startIp', problem: 'required with endIp' });
    if (input.endIp === undefined) problems.push({ field: 'endIp', problem: 'required with startIp' });
    first = address('startIp', input.startIp, version, problems);
    last = address('endIp', input.endIp, version, problems);
    prefix = prefixOf(input, version, !reserved, problems);
    if (first !== undefined && last !== undefined && first > last)
      problems.push({ field: 'endIp', problem: `must not be below startIp ${input.startIp}` });
    if (prefix !== undefined && first !== undefined) {
      const hostBits = (1n << BigInt(bits(version) - prefix)) - 1n;
      subnet = { version, network: first & ~hostBits, prefix };
      const usable = usableRange(subnet);
      if (first < usable.first)
        problems.push({
          field: 'startIp',
          problem: `is the network address of ${formatIp(subnet.network, version)}/${prefix}`,
        });
      if (last !== undefined && last > cidrRange(subnet).last)
        problems.push({
          field: 'endIp',
          problem: `is not in the subnet ${formatIp(subnet.network, version)}/${prefix} of startIp`,
        });
      else if (last !== undefined && last > usable.last)
        problems.push({
          field: 'endIp',
          problem: `is the broadcast address of ${formatIp(subnet.network, version)}/${prefix}`,
        });
    }
  }

  let gatewayValue: bigint | null = null;
  if (input.gateway !== undefined && !reserved) {
    const g = address('gateway', input.gateway, version, problems);
    if (g !== undefined && subnet) {
      const usable = usableRange(subnet);
      if (g < usable.first || g > usable.last)
        problems.push({
          field: 'gateway',
          problem: `is not a usable address of the subnet ${formatIp(subnet.network, version)}/${subnet.prefix}`,
        });
      else gatewayValue = g;
    }
  } else if (input.cidr !== undefined && !reserved && subnet && first !== undefined) {
    // default gateway with a cidr: the first usable address (then not handed out); a /31 or /32
    // (IPv6: /127, /128) has no address to spare for one
    if (subnet.prefix <= (version === 4 ? 30 : 126)) gatewayValue = first;
  }

  if (problems.length > 0 || first === undefined || last === undefined) return { ok: false, problems };
  return {
    ok: true,
    spec: {
      ipVersion: version,
      first,
      last,
      startIp: formatIp(first, version),
      endIp: formatIp(last, version),
      gateway: gatewayValue === null ? null : formatIp(gatewayValue, version),
      gatewayValue,
      prefixLength: prefix ?? null,
      netmask: prefix !== undefined && version === 4 ? prefixToNetmask(prefix) : null,
    },
  };
}
