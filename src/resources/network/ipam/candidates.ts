/**
 * IPAM's pure arithmetic (no I/O): which addresses of an L3 may be handed out, how many there
 * are, random candidates weighted by size, and where a static address falls.
 *
 * An L3's allocatable addresses are its normal ranges minus its reserved ranges minus the
 * gateways (docs/network.md "L3 networks and IP ranges"), cut into disjoint ascending spans.
 * The spans are what both strategies draw from and what the capacity counts.
 */
import { type IpVersion, parseIp, randomInRange, rangeSize } from '../../../kernel/ip.js';

export interface RangeInfo {
  uuid: string;
  type: 'normal' | 'reserved';
  version: IpVersion;
  first: bigint;
  last: bigint;
  /** the gateway's text as stored (null: none) */
  gateway: string | null;
  prefixLength: number;
  netmask: string | null;
}

/** A run of allocatable addresses, all inside the normal range `rangeUuid`. */
export interface Span {
  rangeUuid: string;
  first: bigint;
  last: bigint;
}

export interface Candidate {
  rangeUuid: string;
  value: bigint;
}

/** The numeric values of the gateways of the ranges (each once). */
export function gatewayValues(ranges: RangeInfo[]): bigint[] {
  const out = new Set<bigint>();
  for (const r of ranges) {
    const g = r.gateway === null ? undefined : parseIp(r.gateway);
    if (g && g.version === r.version) out.add(g.value);
  }
  return [...out];
}

/** Removes [cutFirst, cutLast] from each piece; pieces stay ascending and disjoint. */
function subtract(pieces: Span[], cutFirst: bigint, cutLast: bigint): Span[] {
  const out: Span[] = [];
  for (const p of pieces) {
    if (cutLast < p.first || cutFirst > p.last) {
      out.push(p);
      continue;
    }
    if (cutFirst > p.first) out.push({ rangeUuid: p.rangeUuid, first: p.first, last: cutFirst - 1n });
    if (cutLast < p.last) out.push({ rangeUuid: p.rangeUuid, first: cutLast + 1n, last: p.last });
  }
  return out;
}

/**
 * The allocatable spans of an L3: every normal range minus every reserved range and every
 * gateway (of any range of the L3) that falls inside it. Ascending by address.
 */
export function allocatableSpans(ranges: RangeInfo[]): Span[] {
  const reserved = ranges.filter((r) => r.type === 'reserved');
  const gateways = gatewayValues(ranges);
  const normal = ranges.filter((r) => r.type === 'normal').sort((a, b) => (a.first < b.first ? -1 : 1));
  const spans: Span[] = [];
  for (const r of normal) {
    let pieces: Span[] = [{ rangeUuid: r.uuid, first: r.first, last: r.last }];
    for (const x of reserved) pieces = subtract(pieces, x.first, x.last);
    for (const g of gateways) pieces = subtract(pieces, g, g);
    spans.push(...pieces);
  }
  return spans;
}

export function spansSize(spans: Span[]): bigint {
  let total = 0n;
  for (const s of spans) total += rangeSize(s.first, s.last);
  return total;
}

/** The address at `offset` (0-based) when the spans are laid end to end. */
export function addressAt(spans: Span[], offset: bigint): Candidate {
  let rest = offset;
  for (const s of spans) {
    const size = rangeSize(s.first, s.last);
    if (rest < size) return { rangeUuid: s.rangeUuid, value: s.first + rest };
    rest -= size;
  }
  throw new RangeError(`offset ${offset} is past the spans`);
}

/**
 * Up to `count` distinct random addresses of the spans, each address equally likely (so a span
 * is drawn in proportion to its size). Fewer when the spans hold fewer addresses.
 */
export function randomCandidates(spans: Span[], count: number): Candidate[] {
  const total = spansSize(spans);
  if (total === 0n) return [];
  const want = total < BigInt(count) ? Number(total) : count;
  const seen = new Set<bigint>();
  const out: Candidate[] = [];
  // Duplicates only matter for tiny spans; the cap bounds the loop whatever the luck.
  for (let tries = 0; out.length < want && tries < count * 8; tries++) {
    const c = addressAt(spans, randomInRange(0n, total - 1n));
    if (seen.has(c.value)) continue;
    seen.add(c.value);
    out.push(c);
  }
  return out;
}

export type Placement =
  | { ok: true; range: RangeInfo }
  | { ok: false; why: 'version' | 'outside' | 'reserved' | 'gateway' };

/**
 * Where a static address falls: the normal range that holds it, unless it is reserved or a
 * gateway (a gateway is allowed for a virtual router's guest NIC; a gateway outside every normal
 * range then belongs to the range it is the gateway of).
 */
export function placeStatic(
  ranges: RangeInfo[],
  version: IpVersion,
  value: bigint,
  allowGateway: boolean,
): Placement {
  if (ranges.length > 0 && ranges[0]!.version !== version) return { ok: false, why: 'version' };
  const isGateway = gatewayValues(ranges).includes(value);
  if (isGateway && allowGateway) {
    const holder =
      ranges.find((r) => r.type === 'normal' && r.first <= value && value <= r.last) ??
      ranges.find((r) => r.type === 'normal' && r.gateway !== null && parseIp(r.gateway)?.value === value);
    return holder ? { ok: true, range: holder } : { ok: false, why: 'outside' };
  }
  const range = ranges.find((r) => r.type === 'normal' && r.first <= value && value <= r.last);
  if (!range) return { ok: false, why: 'outside' };
  if (ranges.some((r) => r.type === 'reserved' && r.first <= value && value <= r.last))
    return { ok: false, why: 'reserved' };
  if (isGateway) return { ok: false, why: 'gateway' };
  return { ok: true, range };
}

/** Fisher–Yates on a copy: spreads concurrent allocators over the free addresses a gap query found. */
export function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Number(randomInRange(0n, BigInt(i)));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
