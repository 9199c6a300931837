/**
 * IP address math for IP address management: parsing, canonical formatting, CIDR and netmask
 * arithmetic, usable host ranges, random picks, MAC addresses. Pure: no I/O.
 *
 * Every address is a non-negative bigint plus its version, so IPv4 and IPv6 share one code path
 * (a 128-bit value does not fit a JS number). PostgreSQL stores the same value as numeric(39,0),
 * which orders addresses correctly and lets a unique index refuse a double allocation; the decimal
 * helpers are the bridge. Text is parsed strictly (anything ambiguous is refused, never guessed)
 * and always formatted canonically, so that equal addresses are equal strings.
 */
import { randomBytes } from 'node:crypto';

export type IpVersion = 4 | 6;
export interface ParsedIp {
  version: IpVersion;
  value: bigint;
}
export interface Cidr {
  version: IpVersion;
  network: bigint;
  prefix: number;
}
export interface IpRange {
  first: bigint;
  last: bigint;
}

const MAX_V4 = (1n << 32n) - 1n;
const MAX_V6 = (1n << 128n) - 1n;
// No leading zeros: '010' is octal to inet_aton and decimal to others, so it is refused outright.
const OCTET = '(0|[1-9][0-9]{0,2})';
const V4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;
const PREFIX_RE = /^(0|[1-9][0-9]{0,2})$/;
const DECIMAL_RE = /^(0|[1-9][0-9]*)$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const MAC_PREFIX_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){0,4}$/i;

export function maxValue(version: IpVersion): bigint {
  return version === 4 ? MAX_V4 : MAX_V6;
}

function bitsOf(version: IpVersion): number {
  return version === 4 ? 32 : 128;
}

function parseV4(text: string): bigint | undefined {
  const m = V4_RE.exec(text);
  if (!m) return undefined;
  let value = 0n;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** Groups of one side of '::'; an embedded IPv4 address counts as two groups and may only come last. */
function parseGroups(text: string, v4AllowedAtEnd: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (HEX_GROUP_RE.test(part)) {
      groups.push(Number.parseInt(part, 16));
    } else if (v4AllowedAtEnd && i === parts.length - 1) {
      const v4 = parseV4(part);
      if (v4 === undefined) return undefined;
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    // '::' stands for at least one zero group (RFC 4291 §2.2).
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (all?.length !== 8) return undefined;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

export function parseIp(text: string): ParsedIp | undefined {
  if (text.includes(':')) {
    const value = parseV6(text);
    return value === undefined ? undefined : { version: 6, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { version: 4, value };
}

export function ipVersionOf(text: string): IpVersion | undefined {
  return parseIp(text)?.version;
}

function checkValue(value: bigint, version: IpVersion): void {
  if (value < 0n || value > maxValue(version)) {
    throw new RangeError(`${value} is not an IPv${version} address value`);
  }
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** RFC 5952: lowercase, no leading zeros, the longest (first on a tie) run of two or more zero groups as '::'. */
function formatV6(value: bigint): string {
  // IPv4-mapped addresses keep the dotted tail (RFC 5952 §5), as PostgreSQL and Node sockets print them.
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & MAX_V4)}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Throws RangeError for a value outside the version's address space: that is a caller's bug, not input. */
export function formatIp(value: bigint, version: IpVersion): string {
  checkValue(value, version);
  return version === 4 ? formatV4(value) : formatV6(value);
}

function hostMask(prefix: number, version: IpVersion): bigint {
  const bits = bitsOf(version);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
    throw new RangeError(`/${prefix} is not an IPv${version} prefix length`);
  }
  return (1n << BigInt(bits - prefix)) - 1n;
}

/** Strict: a CIDR with host bits set ('10.0.0.1/24') is refused, since it usually means a typo. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !PREFIX_RE.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bitsOf(ip.version)) return undefined;
  if ((ip.value & hostMask(prefix, ip.version)) !== 0n) return undefined;
  return { version: ip.version, network: ip.value, prefix };
}

export function cidrRange(c: Cidr): IpRange {
  return { first: c.network, last: c.network | hostMask(c.prefix, c.version) };
}

export function networkOf(ip: bigint, prefix: number, version: IpVersion): bigint {
  checkValue(ip, version);
  return ip & ~hostMask(prefix, version);
}

export function sameSubnet(a: bigint, b: bigint, prefix: number, version: IpVersion): boolean {
  return networkOf(a, prefix, version) === networkOf(b, prefix, version);
}

/** IPv4 only; throws RangeError outside 0..32. */
export function prefixToNetmask(prefix: number): string {
  return formatV4(MAX_V4 & ~hostMask(prefix, 4));
}

export function netmaskToPrefix(mask: string): number | undefined {
  const value = parseV4(mask);
  if (value === undefined) return undefined;
  const host = MAX_V4 ^ value;
  // Contiguous means the host part is 2^k - 1: ones only at the bottom.
  if ((host & (host + 1n)) !== 0n) return undefined;
  return host === 0n ? 32 : 32 - host.toString(2).length;
}

export function rangeSize(first: bigint, last: bigint): bigint {
  return last < first ? 0n : last - first + 1n;
}

/** Inclusive bounds: ranges that share one address overlap; an empty range overlaps nothing. */
export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  if (a.last < a.first || b.last < b.first) return false;
  return a.first <= b.last && b.first <= a.last;
}

/**
 * The addresses of a CIDR that may go to NICs. IPv4 loses the network and broadcast addresses,
 * except on /31 and /32 where there are none (RFC 3021). IPv6 has no broadcast; it loses the
 * subnet-router anycast (the first address), except on /127 (RFC 6164) and /128, where that would
 * leave too little or nothing.
 */
export function usableRange(c: Cidr): IpRange {
  const { first, last } = cidrRange(c);
  if (c.version === 4) return c.prefix <= 30 ? { first: first + 1n, last: last - 1n } : { first, last };
  return c.prefix <= 126 ? { first: first + 1n, last } : { first, last };
}

/** Uniform in [first, last]: draws just enough random bits and rejects values past the span, so no modulo bias. */
export function randomInRange(first: bigint, last: bigint): bigint {
  if (last < first) throw new RangeError(`empty range ${first}..${last}`);
  const span = last - first;
  if (span === 0n) return first;
  const bits = span.toString(2).length;
  const bytes = Math.ceil(bits / 8);
  const keep = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const draw = BigInt(`0x${randomBytes(bytes).toString('hex')}`) & keep;
    if (draw <= span) return first + draw;
  }
}

export function toDecimal(value: bigint): string {
  return value.toString(10);
}

/** Throws SyntaxError unless the text is a canonical decimal in the IPv6 address space (which holds IPv4's). */
export function fromDecimal(text: string): bigint {
  if (!DECIMAL_RE.test(text)) throw new SyntaxError(`'${text}' is not a decimal address value`);
  const value = BigInt(text);
  if (value > MAX_V6) throw new SyntaxError(`${text} is larger than any address`);
  return value;
}

/**
 * A MAC under the given prefix (0-5 octets), the rest random. With no prefix octets the first
 * octet is random too, forced to locally administered unicast; a prefix must itself be that, so
 * the result never collides with a vendor's burned-in addresses or reads as multicast. The default
 * leaves 24 random bits: duplicates happen (birthday bound, ~3 per 10 000), so callers must rely
 * on a unique index and retry, as Neutron does.
 */
export function randomMac(prefix = 'fa:16:3e'): string {
  if (prefix !== '' && !MAC_PREFIX_RE.test(prefix)) throw new RangeError(`'${prefix}' is not a MAC prefix`);
  const head = prefix === '' ? [] : prefix.toLowerCase().split(':');
  const octets = [...head, ...[...randomBytes(6 - head.length)].map((b) => b.toString(16).padStart(2, '0'))];
  const first = Number.parseInt(octets[0]!, 16);
  if (head.length === 0) {
    octets[0] = ((first & 0xfe) | 0x02).toString(16).padStart(2, '0');
  } else if ((first & 0x03) !== 0x02) {
    throw new RangeError(`MAC prefix '${prefix}' is not locally administered unicast`);
  }
  return octets.join(':');
}

/** Six colon-separated hex octets, either case; callers store the lowercase form. */
export function isValidMac(text: string): boolean {
  return MAC_RE.test(text);
}
