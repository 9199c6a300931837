/**
 * allocateIp / releaseIps / ipCapacity on a real PostgreSQL, with the L3 and its ranges written
 * straight into the tables (the API's own validation is covered by test/scenario/ipam.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/database.js';
import type { Db } from '../../../db/pool.js';
import { newId } from '../../../kernel/ids.js';
import { parseIp, toDecimal } from '../../../kernel/ip.js';
import { allocateIp, type IpRequest, ipCapacity, releaseIps } from './index.js';

let t: TestDatabase;
let db: Db;
const account = newId();
let l2: string;
let zone: string;

before(async () => {
  t = await createTestDatabase({ max: 20 });
  db = t.db;
  zone = newId();
  await db
    .insertInto('zones')
    .values({ uuid: zone, name: 'z', description: null, accountUuid: account })
    .execute();
  l2 = newId();
  await db
    .insertInto('l2Networks')
    .values({
      uuid: l2,
      name: 'l2',
      description: null,
      accountUuid: account,
      zoneUuid: zone,
      type: 'no-vlan',
      physicalInterface: 'eth0',
      vlan: null,
      vni: null,
      vxlanPoolUuid: null,
    })
    .execute();
});
after(async () => t.drop());

async function l3(opts: { version?: 4 | 6; allocation?: 'random' | 'sequential' } = {}): Promise<string> {
  const uuid = newId();
  await db
    .insertInto('l3Networks')
    .values({
      uuid,
      name: `l3-${uuid}`,
      description: null,
      accountUuid: account,
      l2NetworkUuid: l2,
      zoneUuid: zone,
      category: 'private',
      ipVersion: opts.version ?? 4,
      ipAllocation: opts.allocation ?? 'random',
      provider: null,
      domainName: null,
      virtualRouterOfferingUuid: null,
    })
    .execute();
  return uuid;
}

async function addRange(
  l3Uuid: string,
  start: string,
  end: string,
  opts: { type?: 'normal' | 'reserved'; gateway?: string | null; prefix?: number } = {},
): Promise<string> {
  const uuid = newId();
  const version = start.includes(':') ? 6 : 4;
  await db
    .insertInto('ipRanges')
    .values({
      uuid,
      name: `r-${uuid}`,
      description: null,
      accountUuid: account,
      l3NetworkUuid: l3Uuid,
      type: opts.type ?? 'normal',
      ipVersion: version,
      startIp: start,
      endIp: end,
      firstNumber: toDecimal(parseIp(start)!.value),
      lastNumber: toDecimal(parseIp(end)!.value),
      gateway: opts.gateway === undefined ? null : opts.gateway,
      // as the ip-ranges service stores it: the INSERT of an address checks against it
      gatewayNumber: opts.gateway ? toDecimal(parseIp(opts.gateway)!.value) : null,
      prefixLength: opts.prefix ?? (version === 4 ? 24 : 64),
      netmask: null,
    })
    .execute();
  return uuid;
}

const req = (l3NetworkUuid: string, extra: Partial<IpRequest> = {}): IpRequest => ({
  l3NetworkUuid,
  accountUuid: account,
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

test('a /29 hands out its 4 free addresses (not the gateway, not the reserved one), then is exhausted', async () => {
  const net = await l3();
  const range = await addRange(net, '10.0.0.1', '10.0.0.6', { gateway: '10.0.0.1', prefix: 29 });
  await addRange(net, '10.0.0.6', '10.0.0.6', { type: 'reserved' });
  assert.deepEqual(await ipCapacity(db, net), { total: 4, used: 0, free: 4 });
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await allocateIp(db, req(net)));
  assert.deepEqual(got.map((g) => g.ip).sort(), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  assert.equal(got[0]!.ipRangeUuid, range);
  assert.equal(got[0]!.gateway, '10.0.0.1');
  assert.equal(got[0]!.prefixLength, 29);
  assert.equal(got[0]!.ipVersion, 4);
  assert.equal(await code(allocateIp(db, req(net))), 'L3_NETWORK_IP_EXHAUSTED');
  assert.deepEqual(await ipCapacity(db, net), { total: 4, used: 4, free: 0 });
});

test('static addresses: taken, outside, reserved, the gateway (allowed for a router), not an address', async () => {
  const net = await l3();
  await addRange(net, '10.0.1.10', '10.0.1.20', { gateway: '10.0.1.1' });
  await addRange(net, '10.0.1.15', '10.0.1.16', { type: 'reserved' });
  const a = await allocateIp(db, req(net, { ip: '10.0.1.12' }));
  assert.equal(a.ip, '10.0.1.12');
  assert.equal(await code(allocateIp(db, req(net, { ip: '10.0.1.12' }))), 'IP_ADDRESS_TAKEN');
  assert.equal(await code(allocateIp(db, req(net, { ip: '10.0.1.21' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(db, req(net, { ip: '10.0.1.15' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(db, req(net, { ip: '10.0.1.1' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(db, req(net, { ip: 'fd00::1' }))), 'IP_ADDRESS_NOT_IN_RANGE');
  assert.equal(await code(allocateIp(db, req(net, { ip: '10.0.1' }))), 'INVALID_ARGUMENT');
  const router = await allocateIp(db, req(net, { ip: '10.0.1.1', allowGateway: true, usedFor: 'router' }));
  assert.equal(router.ip, '10.0.1.1');
  // the router's gateway address is used but does not eat into the pool
  assert.deepEqual(await ipCapacity(db, net), { total: 9, used: 2, free: 8 });
});

test('errors: no L3, no range', async () => {
  assert.equal(await code(allocateIp(db, req(newId()))), 'L3_NETWORK_NOT_FOUND');
  const net = await l3();
  assert.equal(await code(allocateIp(db, req(net))), 'L3_NETWORK_NO_IP_RANGE');
  await addRange(net, '10.0.2.5', '10.0.2.5', { type: 'reserved' });
  assert.equal(await code(allocateIp(db, req(net))), 'L3_NETWORK_NO_IP_RANGE');
});

test('sequential gives ascending addresses, skipping reserved ones and the gateway; released ones are reused', async () => {
  const net = await l3({ allocation: 'sequential' });
  await addRange(net, '10.0.3.1', '10.0.3.30', { gateway: '10.0.3.1' });
  await addRange(net, '10.0.3.4', '10.0.3.5', { type: 'reserved' });
  const ips = [];
  for (let i = 0; i < 5; i++)
    ips.push(
      (await allocateIp(db, req(net, { vmUuid: i < 2 ? 'a0000000-0000-4000-8000-000000000001' : null }))).ip,
    );
  assert.deepEqual(ips, ['10.0.3.2', '10.0.3.3', '10.0.3.6', '10.0.3.7', '10.0.3.8']);
  assert.equal(await releaseIps(db, { vmUuid: 'a0000000-0000-4000-8000-000000000001' }), 2);
  assert.equal((await allocateIp(db, req(net))).ip, '10.0.3.2');
  await assert.rejects(releaseIps(db, {}), RangeError);
});

test('a given uuid: a re-run returns the same address instead of a second one', async () => {
  const net = await l3();
  await addRange(net, '10.0.4.2', '10.0.4.200');
  const uuid = newId();
  const first = await allocateIp(db, req(net, { uuid }));
  const again = await allocateIp(db, req(net, { uuid }));
  assert.deepEqual(again, first);
  assert.equal((await ipCapacity(db, net)).used, 1);
  assert.equal(await releaseIps(db, { uuid }), 1);
  assert.equal(await releaseIps(db, { uuid }), 0);
});

test('IPv6: random addresses in a /64, static ones, exact numbers past 2^53', async () => {
  const net = await l3({ version: 6 });
  await addRange(net, '2001:db8::2', '2001:db8::ffff:ffff:ffff:ffff', { gateway: '2001:db8::1' });
  const got = await Promise.all(Array.from({ length: 20 }, () => allocateIp(db, req(net))));
  assert.equal(new Set(got.map((g) => g.ip)).size, 20);
  for (const g of got) assert.ok(g.ip.startsWith('2001:db8:') && g.ipVersion === 6, g.ip);
  const top = await allocateIp(db, req(net, { ip: '2001:db8::ffff:ffff:ffff:ffff' }));
  assert.equal(top.ip, '2001:db8::ffff:ffff:ffff:ffff');
  assert.equal(
    await code(allocateIp(db, req(net, { ip: '2001:db8:0:0:ffff:ffff:ffff:ffff' }))),
    'IP_ADDRESS_TAKEN',
  );
  const row = await db
    .selectFrom('ipAddresses')
    .select((eb) => eb.cast<string>('ipNumber', 'text').as('n'))
    .where('uuid', '=', top.uuid)
    .executeTakeFirstOrThrow();
  assert.equal(row.n, toDecimal(parseIp('2001:db8::ffff:ffff:ffff:ffff')!.value));
  const cap = await ipCapacity(db, net);
  assert.equal(cap.used, 21);
  assert.equal(cap.total, Number.MAX_SAFE_INTEGER);
});

test('sequential: 200 concurrent allocations on a /24 get 200 distinct addresses of the range', async () => {
  const net = await l3({ allocation: 'sequential' });
  await addRange(net, '10.0.5.1', '10.0.5.254', { gateway: '10.0.5.1' });
  const got = await Promise.all(Array.from({ length: 200 }, () => allocateIp(db, req(net))));
  const last = got.map((g) => Number(g.ip.split('.')[3])).sort((a, b) => a - b);
  assert.equal(new Set(last).size, 200);
  assert.ok(last.every((v) => v >= 2 && v <= 254));
  assert.deepEqual(await ipCapacity(db, net), { total: 253, used: 200, free: 53 });
});

test('random: 2,000 concurrent allocations on a /21 take all 2,045 addresses but the gateway, no duplicate, then exhausted', async () => {
  const net = await l3();
  await addRange(net, '10.8.0.1', '10.8.7.254', { gateway: '10.8.0.1', prefix: 21 });
  const started = Date.now();
  const got = await Promise.all(Array.from({ length: 2000 }, () => allocateIp(db, req(net))));
  const elapsed = Date.now() - started;
  assert.equal(new Set(got.map((g) => g.ip)).size, 2000);
  assert.ok(!got.some((g) => g.ip === '10.8.0.1'));
  assert.deepEqual(await ipCapacity(db, net), { total: 2045, used: 2000, free: 45 });
  const rest = await Promise.all(Array.from({ length: 45 }, () => allocateIp(db, req(net))));
  assert.equal(new Set([...got, ...rest].map((g) => g.ip)).size, 2045);
  assert.equal(await code(allocateIp(db, req(net))), 'L3_NETWORK_IP_EXHAUSTED');
  assert.deepEqual(await ipCapacity(db, net), { total: 2045, used: 2045, free: 0 });
  console.log(`2,000 concurrent allocations: ${elapsed} ms`);
});

test('a cached plan never hands out a wrong address: a reserved range or a new range made behind its back', async () => {
  const net = await l3({ allocation: 'sequential' });
  await addRange(net, '10.0.9.1', '10.0.9.4', { gateway: '10.0.9.1' });
  assert.equal((await allocateIp(db, req(net))).ip, '10.0.9.2'); // the plan is now cached
  // made behind the cache's back (no forgetIpPlan): the INSERT still refuses the reserved address
  await addRange(net, '10.0.9.3', '10.0.9.3', { type: 'reserved' });
  assert.equal((await allocateIp(db, req(net))).ip, '10.0.9.4');
  // the cached ranges are full; a range added since is found by the retry with a fresh plan
  await addRange(net, '10.0.10.1', '10.0.10.2', { gateway: null });
  assert.equal((await allocateIp(db, req(net))).ip, '10.0.10.1');
  assert.equal((await allocateIp(db, req(net))).ip, '10.0.10.2');
  assert.equal(await code(allocateIp(db, req(net))), 'L3_NETWORK_IP_EXHAUSTED');
});
