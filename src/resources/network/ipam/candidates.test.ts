import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIp, type IpVersion, parseIp } from '../../../kernel/ip.js';
import {
  addressAt,
  allocatableSpans,
  gatewayValues,
  placeStatic,
  type RangeInfo,
  randomCandidates,
  type Span,
  shuffled,
  spansSize,
} from './candidates.js';

const n = (text: string) => parseIp(text)!.value;
let seq = 0;
function range(
  start: string,
  end: string,
  opts: { type?: 'normal' | 'reserved'; gateway?: string | null; prefix?: number; uuid?: string } = {},
): RangeInfo {
  const version: IpVersion = start.includes(':') ? 6 : 4;
  return {
    uuid: opts.uuid ?? `r${++seq}`,
    type: opts.type ?? 'normal',
    version,
    first: n(start),
    last: n(end),
    gateway: opts.gateway === undefined ? null : opts.gateway,
    prefixLength: opts.prefix ?? (version === 4 ? 24 : 64),
    netmask: null,
  };
}
const text = (spans: Span[], v: IpVersion = 4) =>
  spans.map((s) => `${formatIp(s.first, v)}-${formatIp(s.last, v)}`);
/** every address of the spans, expanded (small spans only) */
function expand(spans: Span[]): bigint[] {
  const out: bigint[] = [];
  for (const s of spans) for (let v = s.first; v <= s.last; v++) out.push(v);
  return out;
}

test('a normal range with its gateway inside: the gateway is cut out', () => {
  const r = range('10.0.0.1', '10.0.0.254', { gateway: '10.0.0.1' });
  const spans = allocatableSpans([r]);
  assert.deepEqual(text(spans), ['10.0.0.2-10.0.0.254']);
  assert.equal(spansSize(spans), 253n);
});

test('a gateway in the middle splits the range; a gateway outside it removes nothing', () => {
  assert.deepEqual(text(allocatableSpans([range('10.0.0.10', '10.0.0.20', { gateway: '10.0.0.15' })])), [
    '10.0.0.10-10.0.0.14',
    '10.0.0.16-10.0.0.20',
  ]);
  const outside = allocatableSpans([range('10.0.0.10', '10.0.0.20', { gateway: '10.0.0.1' })]);
  assert.deepEqual(text(outside), ['10.0.0.10-10.0.0.20']);
  assert.equal(spansSize(outside), 11n);
});

test('reserved ranges are cut out of the normal ranges they lie in', () => {
  const spans = allocatableSpans([
    range('10.0.0.1', '10.0.0.100', { gateway: '10.0.0.1' }),
    range('10.0.0.10', '10.0.0.19', { type: 'reserved' }),
    range('10.0.0.95', '10.0.0.100', { type: 'reserved' }),
    range('10.0.0.50', '10.0.0.50', { type: 'reserved' }),
  ]);
  assert.deepEqual(text(spans), ['10.0.0.2-10.0.0.9', '10.0.0.20-10.0.0.49', '10.0.0.51-10.0.0.94']);
  assert.equal(spansSize(spans), 100n - 1n - 10n - 6n - 1n);
});

test('a reserved range covering a whole normal range leaves nothing; a gateway inside a reserved range is not counted twice', () => {
  assert.deepEqual(
    allocatableSpans([range('10.0.0.1', '10.0.0.5'), range('10.0.0.1', '10.0.0.5', { type: 'reserved' })]),
    [],
  );
  const spans = allocatableSpans([
    range('10.0.0.1', '10.0.0.10', { gateway: '10.0.0.3' }),
    range('10.0.0.2', '10.0.0.4', { type: 'reserved' }),
  ]);
  assert.deepEqual(text(spans), ['10.0.0.1-10.0.0.1', '10.0.0.5-10.0.0.10']);
  assert.equal(spansSize(spans), 7n);
});

test('several normal ranges come out ascending whatever their order; every gateway of the L3 is excluded everywhere', () => {
  const spans = allocatableSpans([
    range('10.0.1.1', '10.0.1.3', { gateway: '10.0.1.1' }),
    range('10.0.0.1', '10.0.0.3', { gateway: '10.0.0.1' }),
  ]);
  assert.deepEqual(text(spans), ['10.0.0.2-10.0.0.3', '10.0.1.2-10.0.1.3']);
  // ranges of one subnet with one gateway: the gateway is excluded once
  assert.deepEqual(
    gatewayValues([
      range('10.0.0.1', '10.0.0.2', { gateway: '10.0.0.1' }),
      range('10.0.0.5', '10.0.0.6', { gateway: '10.0.0.1' }),
    ]),
    [n('10.0.0.1')],
  );
});

test('IPv4 edges: /32 and /31 ranges, the top of the address space, 0.0.0.0', () => {
  const single = allocatableSpans([range('10.0.0.7', '10.0.0.7', { prefix: 32 })]);
  assert.equal(spansSize(single), 1n);
  assert.deepEqual(expand(single), [n('10.0.0.7')]);
  const pair = allocatableSpans([range('10.0.0.6', '10.0.0.7', { prefix: 31 })]);
  assert.equal(spansSize(pair), 2n);
  const pairWithGw = allocatableSpans([range('10.0.0.6', '10.0.0.7', { prefix: 31, gateway: '10.0.0.6' })]);
  assert.deepEqual(expand(pairWithGw), [n('10.0.0.7')]);
  const top = allocatableSpans([range('255.255.255.250', '255.255.255.255', { gateway: '255.255.255.255' })]);
  assert.deepEqual(text(top), ['255.255.255.250-255.255.255.254']);
  const topKept = allocatableSpans([range('255.255.255.254', '255.255.255.255', { prefix: 31 })]);
  assert.deepEqual(
    expand(topKept).map((v) => formatIp(v, 4)),
    ['255.255.255.254', '255.255.255.255'],
  );
  const bottom = allocatableSpans([range('0.0.0.0', '0.0.0.3', { gateway: '0.0.0.0' })]);
  assert.deepEqual(text(bottom), ['0.0.0.1-0.0.0.3']);
});

test('IPv6: a /64 has 2^64 - 1 usable addresses less its gateway; addresses past 2^53 stay exact', () => {
  const r = range('2001:db8::1', '2001:db8::ffff:ffff:ffff:ffff', { gateway: '2001:db8::1' });
  const spans = allocatableSpans([r]);
  assert.equal(spansSize(spans), (1n << 64n) - 2n);
  const last = addressAt(spans, spansSize(spans) - 1n);
  assert.equal(formatIp(last.value, 6), '2001:db8::ffff:ffff:ffff:ffff');
  const reserved = allocatableSpans([r, range('2001:db8::100', '2001:db8::1ff', { type: 'reserved' })]);
  assert.deepEqual(text(reserved, 6), [
    '2001:db8::2-2001:db8::ff',
    '2001:db8::200-2001:db8::ffff:ffff:ffff:ffff',
  ]);
  // the top of the IPv6 space
  const top = allocatableSpans([
    range('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', {
      prefix: 127,
    }),
  ]);
  assert.equal(spansSize(top), 2n);
});

test('addressAt walks the spans laid end to end, and refuses past the end', () => {
  const spans = allocatableSpans([range('10.0.0.1', '10.0.0.3'), range('10.0.0.10', '10.0.0.11')]);
  assert.deepEqual(
    [0n, 1n, 2n, 3n, 4n].map((o) => formatIp(addressAt(spans, o).value, 4)),
    ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.10', '10.0.0.11'],
  );
  assert.throws(() => addressAt(spans, 5n), RangeError);
});

test('random candidates: distinct, only allocatable addresses, with their range, never more than exist', () => {
  const a = range('10.0.0.1', '10.0.0.30', { gateway: '10.0.0.1', uuid: 'A' });
  const b = range('10.0.0.100', '10.0.0.102', { uuid: 'B' });
  const reserved = range('10.0.0.5', '10.0.0.25', { type: 'reserved' });
  const spans = allocatableSpans([a, b, reserved]);
  const allowed = new Set(expand(spans));
  for (let i = 0; i < 200; i++) {
    const cs = randomCandidates(spans, 8);
    assert.equal(cs.length, 8);
    assert.equal(new Set(cs.map((c) => c.value)).size, 8);
    for (const c of cs) {
      assert.ok(allowed.has(c.value), formatIp(c.value, 4));
      assert.equal(c.rangeUuid, c.value >= n('10.0.0.100') ? 'B' : 'A');
    }
  }
  const tiny = allocatableSpans([range('10.0.0.1', '10.0.0.3', { gateway: '10.0.0.1' })]);
  const all = randomCandidates(tiny, 8);
  assert.deepEqual(
    all.map((c) => c.value).sort((x, y) => (x < y ? -1 : 1)),
    [n('10.0.0.2'), n('10.0.0.3')],
  );
  assert.deepEqual(randomCandidates([], 8), []);
});

test('random candidates are weighted by size: a range 3x larger gets about 3x the draws', () => {
  const spans = allocatableSpans([
    range('10.0.0.0', '10.0.0.99', { uuid: 'small' }),
    range('10.1.0.0', '10.1.1.43', { uuid: 'big' }),
  ]);
  const counts = { small: 0, big: 0 } as Record<string, number>;
  for (let i = 0; i < 4000; i++) for (const c of randomCandidates(spans, 1)) counts[c.rangeUuid]!++;
  const ratio = counts.big! / counts.small!;
  assert.ok(ratio > 2.4 && ratio < 3.7, `ratio ${ratio}`);
});

test('placeStatic: in a normal range, outside, reserved, a gateway (allowed for a router), a wrong version', () => {
  const normal = range('10.0.0.2', '10.0.0.200', { gateway: '10.0.0.1', uuid: 'N' });
  const withGwInside = range('10.0.1.1', '10.0.1.200', { gateway: '10.0.1.1', uuid: 'M' });
  const reserved = range('10.0.0.100', '10.0.0.110', { type: 'reserved' });
  const ranges = [normal, withGwInside, reserved];
  const place = (ip: string, allowGateway = false) => {
    const p = parseIp(ip)!;
    return placeStatic(ranges, p.version, p.value, allowGateway);
  };
  assert.deepEqual(place('10.0.0.50'), { ok: true, range: normal });
  assert.deepEqual(place('10.0.0.201'), { ok: false, why: 'outside' });
  assert.deepEqual(place('10.0.0.100'), { ok: false, why: 'reserved' });
  assert.deepEqual(place('10.0.0.110'), { ok: false, why: 'reserved' });
  assert.deepEqual(place('10.0.1.1'), { ok: false, why: 'gateway' });
  assert.deepEqual(place('10.0.1.1', true), { ok: true, range: withGwInside });
  // a gateway outside the normal range belongs, for the router, to the range it is the gateway of
  assert.deepEqual(place('10.0.0.1'), { ok: false, why: 'outside' });
  assert.deepEqual(place('10.0.0.1', true), { ok: true, range: normal });
  assert.deepEqual(place('2001:db8::5'), { ok: false, why: 'version' });
});

test('shuffled keeps the items', () => {
  const items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const s = shuffled(items);
  assert.deepEqual(
    [...s].sort((a, b) => a - b),
    items,
  );
  assert.deepEqual(items, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});
