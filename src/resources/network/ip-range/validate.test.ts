import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRange, type RangeInput } from './validate.js';

const spec = (input: RangeInput, version: 4 | 6 = 4) => {
  const r = checkRange(input, version);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
  return r.spec;
};
const fields = (input: RangeInput, version: 4 | 6 = 4) => {
  const r = checkRange(input, version);
  assert.ok(!r.ok, JSON.stringify(input));
  return [...new Set(r.problems.map((p) => p.field))].sort();
};

test('cidr: the usable addresses, the first as default gateway; /31 and /32 (IPv6 /127, /128) get none', () => {
  const s = spec({ cidr: '192.168.1.0/24' });
  assert.deepEqual(
    [s.startIp, s.endIp, s.gateway, s.prefixLength, s.netmask],
    ['192.168.1.1', '192.168.1.254', '192.168.1.1', 24, '255.255.255.0'],
  );
  assert.deepEqual(
    [
      spec({ cidr: '10.0.0.0/31' }).startIp,
      spec({ cidr: '10.0.0.0/31' }).endIp,
      spec({ cidr: '10.0.0.0/31' }).gateway,
    ],
    ['10.0.0.0', '10.0.0.1', null],
  );
  assert.deepEqual(
    [spec({ cidr: '10.0.0.7/32' }).startIp, spec({ cidr: '10.0.0.7/32' }).gateway],
    ['10.0.0.7', null],
  );
  assert.equal(spec({ cidr: '10.0.0.0/30' }).gateway, '10.0.0.1');
  assert.equal(spec({ cidr: '255.255.255.252/30' }).endIp, '255.255.255.254');
  assert.equal(spec({ cidr: '10.0.0.0/24', gateway: '10.0.0.254' }).gateway, '10.0.0.254');
  assert.deepEqual(fields({ cidr: '10.0.0.0/24', gateway: '10.0.1.1' }), ['gateway']);
  assert.deepEqual(fields({ cidr: '10.0.0.0/24', gateway: '10.0.0.255' }), ['gateway']);
  const v6 = spec({ cidr: '2001:db8::/64' }, 6);
  assert.deepEqual(
    [v6.startIp, v6.endIp, v6.gateway, v6.netmask],
    ['2001:db8::1', '2001:db8::ffff:ffff:ffff:ffff', '2001:db8::1', null],
  );
  assert.equal(spec({ cidr: '2001:db8::/127' }, 6).gateway, null);
  assert.equal(spec({ cidr: '2001:db8::/128' }, 6).startIp, '2001:db8::');
});

test('bounds: prefix or netmask, same subnet, order, network and broadcast addresses, canonical text', () => {
  const s = spec({ startIp: '10.0.0.10', endIp: '10.0.0.20', netmask: '255.255.255.0', gateway: '10.0.0.1' });
  assert.deepEqual([s.first < s.last, s.prefixLength, s.gateway], [true, 24, '10.0.0.1']);
  assert.equal(spec({ startIp: '10.0.0.10', endIp: '10.0.0.20', prefixLength: 24 }).gateway, null);
  assert.deepEqual(fields({ startIp: '10.0.0.20', endIp: '10.0.0.10', prefixLength: 24 }), ['endIp']);
  assert.deepEqual(fields({ startIp: '10.0.0.10', endIp: '10.0.1.10', prefixLength: 24 }), ['endIp']);
  assert.deepEqual(fields({ startIp: '10.0.0.0', endIp: '10.0.0.10', prefixLength: 24 }), ['startIp']);
  assert.deepEqual(fields({ startIp: '10.0.0.1', endIp: '10.0.0.255', prefixLength: 24 }), ['endIp']);
  assert.deepEqual(fields({ startIp: '10.0.0.1', endIp: '10.0.0.9', prefixLength: 33 }), ['prefixLength']);
  assert.deepEqual(fields({ startIp: '10.0.0.1' }), ['endIp', 'prefixLength']);
  assert.deepEqual(
    fields({ startIp: '10.0.0.1', endIp: '10.0.0.9', prefixLength: 24, gateway: '10.0.2.1' }),
    ['gateway'],
  );
  assert.deepEqual(fields({ startIp: '2001:db8::1', endIp: '2001:db8::9', prefixLength: 24 }), [
    'endIp',
    'startIp',
  ]);
  assert.equal(
    spec({ startIp: '2001:DB8:0::a', endIp: '2001:db8::00ff', prefixLength: 64 }, 6).startIp,
    '2001:db8::a',
  );
  // a reserved range needs no prefix (it takes its normal range's) and has no gateway
  assert.equal(spec({ type: 'reserved', startIp: '10.0.0.5', endIp: '10.0.0.6' }).prefixLength, null);
  assert.deepEqual(fields({ type: 'reserved', cidr: '10.0.0.0/28', gateway: '10.0.0.1' }), ['gateway']);
});
