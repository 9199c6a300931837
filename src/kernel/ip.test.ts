import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { test } from 'node:test';
import {
  cidrRange,
  formatIp,
  fromDecimal,
  ipVersionOf,
  isValidMac,
  maxValue,
  netmaskToPrefix,
  networkOf,
  parseCidr,
  parseIp,
  prefixToNetmask,
  randomInRange,
  randomMac,
  rangeSize,
  rangesOverlap,
  sameSubnet,
  toDecimal,
  usableRange,
} from './ip.js';

const ip = (text: string) => parseIp(text)!.value;
const cidr = (text: string) => parseCidr(text)!;

const INVALID_V4 = [
  ...['01.2.3.4', '1.02.3.4', '1.2.3.00', '00.0.0.0', '010.0.0.1'], // leading zeros
  ...['256.0.0.1', '1.2.3.256', '999.1.1.1', '1.2.3.1000'], // octet too large
  ...['1.2.3', '1.2.3.4.5', '1', '1.2.3.4.', '.1.2.3.4', '1..2.3'], // octet count
  ...[' 1.2.3.4', '1.2.3.4 ', '1.2. 3.4', '1.2.3.4\n', ''], // whitespace, empty
  ...['1.2.3.-4', '+1.2.3.4', '1.2.3.0x4', '1.2.3.4/32', 'a.b.c.d', '１.2.3.4'], // other junk
];

const INVALID_V6 = [
  ...['1:::2', '1::2::3', '::1::', ':::', '::::'], // '::' more than once or a stray colon
  ...['1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8'], // group count
  ...['1:2:3:4:5:6:7::8', '1::2:3:4:5:6:7:8'], // '::' must stand for at least one group
  ...[':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', ':1::', '::1:', '1:'], // single leading/trailing colon
  ...['12345::', 'g::', '::-1', '1:2:3:4:5:6:7:+8', ' ::1', '::1 ', 'fe80::1%eth0'], // groups, junk
  ...['1.2.3.4::', '::1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:01.2.3.4', '::ffff:1.2.3'], // IPv4 tail
  ...['[::1]', '::/0'],
];

test('IPv4 parsing: the bounds and strictness', () => {
  assert.deepEqual(parseIp('0.0.0.0'), { version: 4, value: 0n });
  assert.deepEqual(parseIp('255.255.255.255'), { version: 4, value: maxValue(4) });
  assert.deepEqual(parseIp('10.0.0.1'), { version: 4, value: 0x0a000001n });
  assert.deepEqual(parseIp('192.168.100.200'), { version: 4, value: 0xc0a864c8n });
  for (const text of INVALID_V4) assert.equal(parseIp(text), undefined, JSON.stringify(text));
});

test('IPv6 parsing: full, compressed and embedded IPv4 forms', () => {
  assert.deepEqual(parseIp('::'), { version: 6, value: 0n });
  assert.deepEqual(parseIp('::1'), { version: 6, value: 1n });
  assert.deepEqual(parseIp('fe80::'), { version: 6, value: 0xfe80n << 112n });
  assert.equal(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')!.value, maxValue(6));
  assert.equal(parseIp('2001:DB8::1')!.value, parseIp('2001:0db8:0000:0000:0000:0000:0000:0001')!.value);
  assert.equal(parseIp('::ffff:1.2.3.4')!.value, 0xffff01020304n);
  assert.equal(parseIp('::ffff:1.2.3.4')!.value, parseIp('::ffff:102:304')!.value);
  assert.equal(parseIp('1:2:3:4:5:6:1.2.3.4')!.value, parseIp('1:2:3:4:5:6:102:304')!.value);
  assert.equal(parseIp('1::')!.value, 1n << 112n);
  assert.equal(parseIp('1:2:3:4:5:6:7::')!.value, parseIp('1:2:3:4:5:6:7:0')!.value);
  assert.equal(parseIp('::2:3:4:5:6:7:8')!.value, parseIp('0:2:3:4:5:6:7:8')!.value);
  for (const text of INVALID_V6) assert.equal(parseIp(text), undefined, text);
  assert.equal(ipVersionOf('::1'), 6);
  assert.equal(ipVersionOf('1.2.3.4'), 4);
  assert.equal(ipVersionOf('1.2.3.4.5'), undefined);
});

test('validity agrees with node:net, except zone ids, which an address pool has no use for', () => {
  const valid = [
    '0.0.0.0',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::',
    '::ffff:1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4',
  ];
  for (const text of [...valid, ...INVALID_V4, ...INVALID_V6]) {
    if (text.includes('%')) continue;
    assert.equal(parseIp(text)?.version ?? 0, isIP(text), JSON.stringify(text));
  }
});

test('formatIp: IPv4 and RFC 5952 canonical IPv6', () => {
  assert.equal(formatIp(0n, 4), '0.0.0.0');
  assert.equal(formatIp(maxValue(4), 4), '255.255.255.255');
  assert.equal(formatIp(0x0a000001n, 4), '10.0.0.1');
  const cases: [string, string][] = [
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80:0:0:0:0:0:0:0', 'fe80::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longer run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0DB8:00AA:0000:0000:0000:0000:0001', '2001:db8:aa::1'], // lowercase, no leading zeros
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:0:0:0:0:0:8', '::8'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['0:1:0:1:0:1:0:1', '0:1:0:1:0:1:0:1'],
    ['::ffff:102:304', '::ffff:1.2.3.4'], // IPv4-mapped keeps the dotted tail
    ['::1.2.3.4', '::102:304'], // IPv4-compatible is deprecated: plain hex
    ['::fffe:1.2.3.4', '::fffe:102:304'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(formatIp(parseIp(input)!.value, 6), canonical, input);
    assert.equal(formatIp(parseIp(canonical)!.value, 6), canonical, `${canonical} is a fixed point`);
  }
  assert.throws(() => formatIp(-1n, 4), RangeError);
  assert.throws(() => formatIp(maxValue(4) + 1n, 4), RangeError);
  assert.throws(() => formatIp(maxValue(6) + 1n, 6), RangeError);
});

test('formatIp matches the WHATWG URL serializer (also RFC 5952) on random sparse addresses', () => {
  for (let i = 0; i < 3000; i++) {
    const bytes = randomBytes(17);
    let value = 0n;
    // Each group is zero with probability 1/2 so zero runs of every length and position occur.
    for (let g = 0; g < 8; g++)
      value = (value << 16n) | (bytes[16]! & (1 << g) ? 0n : BigInt(bytes[g]!) + 1n);
    if (value >> 32n === 0xffffn) continue;
    const text = formatIp(value, 6);
    assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname);
    assert.equal(parseIp(text)!.value, value);
  }
});

test('parseCidr: prefixes per version, host bits refused', () => {
  assert.deepEqual(parseCidr('10.0.0.0/24'), { version: 4, network: 0x0a000000n, prefix: 24 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { version: 4, network: 0n, prefix: 0 });
  assert.deepEqual(parseCidr('10.0.0.1/32'), { version: 4, network: 0x0a000001n, prefix: 32 });
  assert.deepEqual(parseCidr('10.0.0.2/31'), { version: 4, network: 0x0a000002n, prefix: 31 });
  assert.deepEqual(parseCidr('::/0'), { version: 6, network: 0n, prefix: 0 });
  assert.deepEqual(parseCidr('2001:db8::/64'), { version: 6, network: ip('2001:db8::'), prefix: 64 });
  assert.deepEqual(parseCidr('::1/128'), { version: 6, network: 1n, prefix: 128 });
  const invalid = [
    ...['10.0.0.1/24', '10.0.0.1/31', '1.0.0.0/0', '2001:db8::1/64', '::1/127'], // host bits set
    ...['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/024', '10.0.0.0/2.5', '10.0.0.0/'],
    ...['10.0.0.0', '10.0.0.0/24/24', ' 10.0.0.0/24', '10.0.0.0/ 24', '10.0.0.0/24 ', '/24', ''],
    ...['01.0.0.0/8', '1::2::3/64', '10.0.0.0/1e1'],
  ];
  for (const text of invalid) assert.equal(parseCidr(text), undefined, text);
});

test('cidrRange, networkOf and sameSubnet', () => {
  assert.deepEqual(cidrRange(cidr('10.0.0.0/24')), { first: ip('10.0.0.0'), last: ip('10.0.0.255') });
  assert.deepEqual(cidrRange(cidr('0.0.0.0/0')), { first: 0n, last: maxValue(4) });
  assert.deepEqual(cidrRange(cidr('10.0.0.7/32')), { first: ip('10.0.0.7'), last: ip('10.0.0.7') });
  assert.deepEqual(cidrRange(cidr('::/0')), { first: 0n, last: maxValue(6) });
  const v6 = { first: ip('2001:db8::'), last: ip('2001:db8::ffff:ffff:ffff:ffff') };
  assert.deepEqual(cidrRange(cidr('2001:db8::/64')), v6);
  assert.equal(networkOf(ip('10.1.2.3'), 16, 4), ip('10.1.0.0'));
  assert.equal(networkOf(ip('10.1.2.3'), 0, 4), 0n);
  assert.equal(networkOf(ip('10.1.2.3'), 32, 4), ip('10.1.2.3'));
  assert.equal(networkOf(ip('2001:db8::1:2'), 64, 6), ip('2001:db8::'));
  assert.equal(sameSubnet(ip('10.0.0.1'), ip('10.0.0.254'), 24, 4), true);
  assert.equal(sameSubnet(ip('10.0.0.1'), ip('10.0.1.1'), 24, 4), false);
  assert.equal(sameSubnet(ip('10.0.0.1'), ip('10.0.1.1'), 23, 4), true);
  assert.equal(sameSubnet(ip('fe80::1'), ip('fe80::2'), 64, 6), true);
  assert.throws(() => networkOf(1n, 33, 4), RangeError);
  assert.throws(() => networkOf(1n, 1.5, 6), RangeError);
  assert.throws(() => networkOf(maxValue(4) + 1n, 8, 4), RangeError);
});

test('netmasks: every prefix round-trips, non-contiguous masks are refused', () => {
  assert.equal(prefixToNetmask(0), '0.0.0.0');
  assert.equal(prefixToNetmask(24), '255.255.255.0');
  assert.equal(prefixToNetmask(25), '255.255.255.128');
  assert.equal(prefixToNetmask(32), '255.255.255.255');
  const seen = new Set<string>();
  for (let prefix = 0; prefix <= 32; prefix++) {
    const mask = prefixToNetmask(prefix);
    seen.add(mask);
    assert.equal(netmaskToPrefix(mask), prefix, mask);
  }
  assert.equal(seen.size, 33);
  const holes = ['255.0.255.0', '0.0.0.255', '255.255.255.1', '254.255.255.0', '128.0.0.1', '0.255.255.255'];
  for (const mask of holes) assert.equal(netmaskToPrefix(mask), undefined, mask);
  // A valid mask plus any one stray host bit (except the one that makes the next mask): all refused.
  for (let prefix = 0; prefix <= 32; prefix++) {
    const mask = ip(prefixToNetmask(prefix));
    for (let bit = 0; bit < 32 - prefix - 1; bit++) {
      assert.equal(netmaskToPrefix(formatIp(mask | (1n << BigInt(bit)), 4)), undefined);
    }
  }
  for (const junk of ['255.255.255', '255.255.255.0 ', '/24', '24', 'ffff:ffff::', '']) {
    assert.equal(netmaskToPrefix(junk), undefined, junk);
  }
  assert.throws(() => prefixToNetmask(33), RangeError);
  assert.throws(() => prefixToNetmask(-1), RangeError);
});

test('usableRange: IPv4 skips network and broadcast up to /30, IPv6 skips the subnet-router anycast', () => {
  const usable = (text: string) => {
    const { first, last } = usableRange(cidr(text));
    const version = cidr(text).version;
    return [formatIp(first, version), formatIp(last, version)];
  };
  assert.deepEqual(usable('10.0.0.0/24'), ['10.0.0.1', '10.0.0.254']);
  assert.deepEqual(usable('10.0.0.0/30'), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(usable('10.0.0.0/31'), ['10.0.0.0', '10.0.0.1']);
  assert.deepEqual(usable('10.0.0.9/32'), ['10.0.0.9', '10.0.0.9']);
  assert.deepEqual(usable('0.0.0.0/0'), ['0.0.0.1', '255.255.255.254']);
  assert.deepEqual(usable('2001:db8::/64'), ['2001:db8::1', '2001:db8::ffff:ffff:ffff:ffff']);
  assert.deepEqual(usable('2001:db8::/126'), ['2001:db8::1', '2001:db8::3']);
  assert.deepEqual(usable('2001:db8::/127'), ['2001:db8::', '2001:db8::1']);
  assert.deepEqual(usable('2001:db8::5/128'), ['2001:db8::5', '2001:db8::5']);
  for (let prefix = 0; prefix <= 32; prefix++) {
    const { first, last } = usableRange({ version: 4, network: 0n, prefix });
    const size = 2n ** BigInt(32 - prefix);
    assert.equal(rangeSize(first, last), prefix <= 30 ? size - 2n : size);
  }
});

test('rangeSize and rangesOverlap at the edges', () => {
  assert.equal(rangeSize(5n, 5n), 1n);
  assert.equal(rangeSize(5n, 7n), 3n);
  assert.equal(rangeSize(7n, 5n), 0n);
  assert.equal(rangeSize(0n, maxValue(6)), 1n << 128n);
  const r = (first: number, last: number) => ({ first: BigInt(first), last: BigInt(last) });
  const cases: [ReturnType<typeof r>, ReturnType<typeof r>, boolean, string][] = [
    [r(1, 5), r(5, 9), true, 'sharing one address overlaps'],
    [r(1, 4), r(5, 9), false, 'adjacent ranges do not overlap'],
    [r(1, 9), r(3, 4), true, 'containment'],
    [r(3, 3), r(3, 3), true, 'one and the same address'],
    [r(5, 1), r(0, 9), false, 'an empty range overlaps nothing'],
  ];
  for (const [a, b, expected, why] of cases) {
    assert.equal(rangesOverlap(a, b), expected, why);
    assert.equal(rangesOverlap(b, a), expected, `${why}, swapped`);
  }
  assert.equal(rangesOverlap(cidrRange(cidr('10.0.0.0/8')), cidrRange(cidr('10.1.0.0/16'))), true);
  assert.equal(rangesOverlap(cidrRange(cidr('10.0.0.0/24')), cidrRange(cidr('10.0.1.0/24'))), false);
});

test('randomInRange stays in bounds and reaches every value', () => {
  const hits = new Map<bigint, number>();
  for (let i = 0; i < 2000; i++) {
    const x = randomInRange(5n, 7n);
    assert.ok(x >= 5n && x <= 7n, String(x));
    hits.set(x, (hits.get(x) ?? 0) + 1);
  }
  assert.deepEqual([...hits.keys()].sort(), [5n, 6n, 7n]);
  for (const count of hits.values()) assert.ok(count > 500, 'roughly uniform');
  assert.equal(randomInRange(9n, 9n), 9n);
  for (const [first, last] of [
    [0n, maxValue(6)],
    [1n << 127n, maxValue(6)],
    [0n, 256n],
    [ip('2001:db8::1'), ip('2001:db8::ffff:ffff:ffff:ffff')],
  ] as const) {
    let high = false;
    for (let i = 0; i < 200; i++) {
      const x = randomInRange(first, last);
      assert.ok(x >= first && x <= last, String(x));
      if (x - first > (last - first) / 2n) high = true;
    }
    assert.ok(high, 'the upper half of the range is reached');
  }
  assert.throws(() => randomInRange(2n, 1n), RangeError);
});

test('toDecimal and fromDecimal round-trip, strictly', () => {
  for (const value of [0n, 1n, maxValue(4), maxValue(4) + 1n, maxValue(6)]) {
    assert.equal(fromDecimal(toDecimal(value)), value);
  }
  assert.equal(toDecimal(maxValue(6)), '340282366920938463463374607431768211455');
  assert.equal(toDecimal(ip('10.0.0.1')), '167772161');
  const junk = ['', '-1', '01', '1.0', ' 1', '1e3', '0x10', '340282366920938463463374607431768211456'];
  for (const text of junk) assert.throws(() => fromDecimal(text), SyntaxError, text);
});

test('randomMac: format, prefix, locally administered unicast, rarely repeated', () => {
  const macs = new Set<string>();
  for (let i = 0; i < 10000; i++) {
    const mac = randomMac();
    assert.match(mac, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
    assert.ok(isValidMac(mac));
    macs.add(mac);
  }
  // Only 24 bits are random: the birthday bound predicts ~3 repeats in 10 000, hence unique indexes.
  assert.ok(macs.size > 10000 - 30, `${10000 - macs.size} repeats`);
  const free = new Set<string>();
  for (let i = 0; i < 10000; i++) {
    const mac = randomMac('');
    assert.ok(isValidMac(mac));
    assert.equal(Number.parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, mac);
    free.add(mac);
  }
  assert.equal(free.size, 10000);
  assert.match(randomMac('02:AB'), /^02:ab(:[0-9a-f]{2}){4}$/);
  assert.match(randomMac('02:00:00:00:01'), /^02:00:00:00:01:[0-9a-f]{2}$/);
  for (const bad of ['00:16:3e', '01', 'fb:16', 'fa:16:3e:00:00:00', 'fa:1', 'fa-16-3e', 'zz']) {
    assert.throws(() => randomMac(bad), RangeError, bad);
  }
});

test('isValidMac', () => {
  for (const ok of ['fa:16:3e:00:00:01', 'FA:16:3E:AB:CD:EF', '00:00:00:00:00:00'])
    assert.ok(isValidMac(ok), ok);
  const bad = [
    'fa:16:3e:00:00',
    'fa:16:3e:00:00:01:02',
    'fa-16-3e-00-00-01',
    'fa163e000001',
    'fa:16:3e:0:0:1',
  ];
  for (const text of [...bad, ' fa:16:3e:00:00:01', 'fa:16:3e:00:00:0g', ''])
    assert.equal(isValidMac(text), false, text);
});
