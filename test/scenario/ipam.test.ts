/**
 * IPAM on networks made through the API: addresses come from the normal ranges only (never a
 * reserved one, never the gateway), exhaustion, static addresses, release and reuse, the
 * sequential strategy, what the API shows (ip-addresses, ipTotal/ipUsed/ipFree, a range in use),
 * and 2,000 concurrent allocations on one /21 through a pool of 20 connections.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import { newId } from '../../src/kernel/ids.js';
import { parseIp } from '../../src/kernel/ip.js';
import {
  allocateIp,
  type IpRequest,
  ipCapacity,
  releaseIps,
} from '../../src/resources/network/ipam/index.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';

let t: TestNode;
let acme: Api;
let acmeUuid: string;
let l2: string;
let seq = 0;

before(async () => {
  t = await startTestNode();
  const { zone } = await buildInfra(t.admin, 0, 'ipam');
  l2 = await made(t.admin, '/v1/l2-networks', {
    name: 'l2',
    zoneUuid: zone,
    type: 'no-vlan',
    physicalInterface: 'eth0',
  });
  acmeUuid = await made(t.admin, '/v1/accounts', { name: 'acme', password: 'acme-password' });
  acme = await t.anon.login('acme', 'acme-password');
});
after(async () => t?.stop());

async function made(api: Api, path: string, body: Record<string, unknown>): Promise<string> {
  const job = await api.job('POST', path, body);
  assert.equal(job.state, 'Succeeded', `${path}: ${JSON.stringify(job)}`);
  return job.resourceUuid;
}

/** An L3 of acme with the given ranges ([cidr] or [start, end, prefix] or reserved {start, end}). */
async function network(
  ranges: Array<Record<string, unknown>>,
  opts: Record<string, unknown> = {},
): Promise<string> {
  const l3 = await made(acme, '/v1/l3-networks', {
    name: `l3-${++seq}`,
    l2NetworkUuid: l2,
    category: 'private',
    ...opts,
  });
  for (const r of ranges) await made(acme, '/v1/ip-ranges', { name: `r-${++seq}`, l3NetworkUuid: l3, ...r });
  return l3;
}

const req = (l3NetworkUuid: string, extra: Partial<IpRequest> = {}): IpRequest => ({
  l3NetworkUuid,
  accountUuid: acmeUuid,
  usedFor: 'vm-nic',
  ownerUuid: newId(),
  ...extra,
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'no error';
}

const capacityShown = async (l3: string) => {
  const b = (await acme.get(`/v1/l3-networks/${l3}`)).body;
  return { total: b.ipTotal, used: b.ipUsed, free: b.ipFree };
};

test('a /29 with a reserved address: the 4 others are handed out, never the gateway or the reserved one; then exhausted', async () => {
  const l3 = await network([
    { cidr: '10.20.0.0/29' },
    { type: 'reserved', startIp: '10.20.0.6', endIp: '10.20.0.6' },
  ]);
  assert.deepEqual(await capacityShown(l3), { total: 4, used: 0, free: 4 });
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await allocateIp(t.db.db, req(l3)));
  assert.deepEqual(got.map((g) => g.ip).sort(), ['10.20.0.2', '10.20.0.3', '10.20.0.4', '10.20.0.5']);
  assert.deepEqual(
    [got[0]!.gateway, got[0]!.prefixLength, got[0]!.netmask],
    ['10.20.0.1', 29, '255.255.255.248'],
  );
  const err = await allocateIp(t.db.db, req(l3)).catch((e) => e);
  assert.equal(err.code, 'L3_NETWORK_IP_EXHAUSTED');
  assert.equal(err.reason, 'Conflict');
  assert.deepEqual(err.details, { l3NetworkUuid: l3 });
  assert.deepEqual(await capacityShown(l3), { total: 4, used: 4, free: 0 });
  assert.deepEqual(await ipCapacity(t.db.db, l3), { total: 4, used: 4, free: 0 });
});

test('static addresses: taken, outside the ranges, reserved; the API lists them; a range in use is kept; release and reuse', async () => {
  const l3 = await network([
    { cidr: '10.21.0.0/24' },
    { type: 'reserved', startIp: '10.21.0.100', endIp: '10.21.0.199' },
  ]);
  const vm = newId();
  const a = await allocateIp(t.db.db, req(l3, { ip: '10.21.0.50', vmUuid: vm }));
  assert.equal(a.ip, '10.21.0.50');
  assert.equal(await code(allocateIp(t.db.db, req(l3, { ip: '10.21.0.50' }))), 'IP_ADDRESS_TAKEN');
  assert.equal(await code(allocateIp(t.db.db, req(l3, { ip: '10.22.0.5' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(t.db.db, req(l3, { ip: '10.21.0.150' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(t.db.db, req(l3, { ip: '10.21.0.1' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(t.db.db, req(l3, { ip: '10.21.0.255' }))), 'IP_ADDRESS_NOT_IN_RANGE');

  // random ones never fall in the reserved range
  const many = await Promise.all(
    Array.from({ length: 100 }, () => allocateIp(t.db.db, req(l3, { vmUuid: vm }))),
  );
  for (const m of many) {
    const last = Number(m.ip.split('.')[3]);
    assert.ok(last >= 2 && last <= 254 && (last < 100 || last > 199), m.ip);
  }
  assert.deepEqual(await capacityShown(l3), { total: 153, used: 101, free: 52 });
  const listed = await acme.get(`/v1/ip-addresses?q=l3NetworkUuid=${l3}&q=ip=10.21.0.50`);
  assert.equal(listed.body.items.length, 1);
  assert.equal(listed.body.items[0].vmUuid, vm);
  assert.equal(listed.body.items[0].usedFor, 'vm-nic');
  const viaRange = await acme.get(`/v1/ip-addresses?q=ipRange.l3NetworkUuid=${l3}&count=true&limit=1`);
  assert.equal(viaRange.body.total, 101);

  const range = (await acme.get(`/v1/ip-ranges?q=l3NetworkUuid=${l3}&q=type=normal`)).body.items[0].uuid;
  const busy = await acme.delete(`/v1/ip-ranges/${range}`);
  assert.equal(busy.status, 409);
  assert.equal(busy.body.error.code, 'IP_RANGE_IN_USE');

  assert.equal(await releaseIps(t.db.db, { vmUuid: vm }), 101);
  assert.deepEqual(await capacityShown(l3), { total: 153, used: 0, free: 153 });
  assert.equal((await allocateIp(t.db.db, req(l3, { ip: '10.21.0.50' }))).ip, '10.21.0.50');
});

test('sequential: ascending addresses, skipping the gateway and reserved ones, the lowest released one first', async () => {
  const l3 = await network(
    [{ cidr: '10.23.0.0/24' }, { type: 'reserved', startIp: '10.23.0.4', endIp: '10.23.0.5' }],
    {
      ipAllocation: 'sequential',
    },
  );
  const ips = [];
  const owners = [];
  for (let i = 0; i < 6; i++) {
    const ownerUuid = newId();
    owners.push(ownerUuid);
    ips.push((await allocateIp(t.db.db, req(l3, { ownerUuid }))).ip);
  }
  assert.deepEqual(ips, ['10.23.0.2', '10.23.0.3', '10.23.0.6', '10.23.0.7', '10.23.0.8', '10.23.0.9']);
  assert.equal(await releaseIps(t.db.db, { ownerUuid: owners[3]! }), 1);
  assert.equal((await allocateIp(t.db.db, req(l3))).ip, '10.23.0.7');
  assert.equal((await allocateIp(t.db.db, req(l3))).ip, '10.23.0.10');
});

test('an L3 with no range, or addresses of another version', async () => {
  const l3 = await network([]);
  assert.equal(await code(allocateIp(t.db.db, req(l3))), 'L3_NETWORK_NO_IP_RANGE');
  const v6 = await network([{ cidr: 'fd00:1::/64' }], { ipVersion: 6 });
  const got = await allocateIp(t.db.db, req(v6));
  assert.equal(got.ipVersion, 6);
  assert.equal(parseIp(got.ip)!.version, 6);
  assert.equal(await code(allocateIp(t.db.db, req(v6, { ip: '10.0.0.1' }))), 'IP_ADDRESS_NOT_IN_RANGE');
});

test('2,000 concurrent allocations on one /21 through 20 connections: no duplicate, exact counts, then exhausted', async () => {
  const l3 = await network([{ cidr: '10.24.0.0/21' }]);
  assert.deepEqual(await capacityShown(l3), { total: 2045, used: 0, free: 2045 });
  const pool: DbHandle = openDb(t.db.url, { max: 20, applicationName: 'ipam-test' });
  try {
    const got = await Promise.all(Array.from({ length: 2000 }, () => allocateIp(pool.db, req(l3))));
    const ips = new Set(got.map((g) => g.ip));
    assert.equal(ips.size, 2000);
    assert.ok(!ips.has('10.24.0.1'), 'the gateway was handed out');
    for (const ip of ips) {
      const v = parseIp(ip)!.value;
      assert.ok(v > parseIp('10.24.0.1')!.value && v < parseIp('10.24.7.255')!.value, ip);
    }
    const rows = await pool.db
      .selectFrom('ipAddresses')
      .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('ip').distinct().as('distinct')])
      .where('l3NetworkUuid', '=', l3)
      .executeTakeFirstOrThrow();
    assert.deepEqual([Number(rows.n), Number(rows.distinct)], [2000, 2000]);
    assert.deepEqual(await ipCapacity(pool.db, l3), { total: 2045, used: 2000, free: 45 });
    assert.deepEqual(await capacityShown(l3), { total: 2045, used: 2000, free: 45 });

    const rest = await Promise.all(Array.from({ length: 45 }, () => allocateIp(pool.db, req(l3))));
    assert.equal(new Set([...ips, ...rest.map((r) => r.ip)]).size, 2045);
    assert.equal(await code(allocateIp(pool.db, req(l3))), 'L3_NETWORK_IP_EXHAUSTED');
    assert.deepEqual(await ipCapacity(pool.db, l3), { total: 2045, used: 2045, free: 0 });
    assert.deepEqual(await capacityShown(l3), { total: 2045, used: 2045, free: 0 });
  } finally {
    await pool.close();
  }
});
