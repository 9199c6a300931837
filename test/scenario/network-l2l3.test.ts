/**
 * VXLAN pools, L2 and L3 networks and IP ranges through the API: field validation naming fields,
 * duplicates refused by the unique indexes, VNIs picked from pools, cluster attachment (and the
 * scheduler's candidates carrying it), admin-only L3 fields, range overlaps (also 20 concurrent
 * creates), and what a tenant may see and use of other accounts' L3s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { CandidateSnapshot } from '../../src/resources/compute/vm/candidates.js';
import { type Api, fieldsOf, startTestNode, type TestNode } from '../support/node.js';
import { buildVmEnv, ok, runningVm, type VmEnv } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let acme: Api;
let globex: Api;
let otherZone: string;
let otherCluster: string;

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { hosts: 1, prefix: 'net' });
  otherZone = (await ok(t, 'POST', '/v1/zones', { name: 'net-zone-2' })).resourceUuid;
  otherCluster = (
    await ok(t, 'POST', '/v1/clusters', {
      name: 'net-cluster-2',
      zoneUuid: otherZone,
      hypervisorType: 'simulator',
    })
  ).resourceUuid;
  for (const name of ['acme', 'globex'])
    await ok(t, 'POST', '/v1/accounts', { name, password: `${name}-password` });
  acme = await t.anon.login('acme', 'acme-password');
  globex = await t.anon.login('globex', 'globex-password');
});
after(async () => t?.stop());

/** the fields an Invalid error names */

async function made(api: Api, path: string, body: Record<string, unknown>): Promise<string> {
  const job = await api.job('POST', path, body);
  assert.equal(job.state, 'Succeeded', `${path}: ${JSON.stringify(job)}`);
  return job.resourceUuid;
}

let seq = 0;
const name = (p: string) => `${p}-${++seq}`;

describe('vxlan pools', () => {
  test('overlapping VNI ranges in one zone are refused; another zone may reuse the numbers', async () => {
    await made(t.admin, '/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 5000,
      vniEnd: 5999,
    });
    const clash = await t.admin.post('/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 5999,
      vniEnd: 6100,
    });
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error.code, 'VXLAN_POOL_OVERLAPS');
    await made(t.admin, '/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: otherZone,
      vniStart: 5500,
      vniEnd: 5600,
    });
    const backwards = await t.admin.post('/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 9,
      vniEnd: 8,
    });
    assert.equal(backwards.status, 400);
    assert.deepEqual(fieldsOf(backwards.body), ['vniEnd']);
    assert.equal(
      (await acme.post('/v1/vxlan-pools', { name: 'x', zoneUuid: env.zone, vniStart: 1, vniEnd: 2 })).status,
      403,
    );
  });

  test('20 concurrent overlapping pools in one zone: exactly one is made', async () => {
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.admin.post('/v1/vxlan-pools?wait=true', {
          name: `race-${i}`,
          zoneUuid: env.zone,
          vniStart: 7000 + i,
          vniEnd: 7100,
        }),
      ),
    );
    const codes = res.map((r) => (r.status === 200 ? r.body.state : r.body.error.code));
    assert.equal(codes.filter((c) => c === 'Succeeded').length, 1, JSON.stringify(codes));
    assert.equal(codes.filter((c) => c === 'VXLAN_POOL_OVERLAPS').length, 19);
  });
});

describe('l2 networks', () => {
  test('type-specific fields: every misfit is named at once', async () => {
    const base = { name: 'bad', zoneUuid: env.zone };
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ type: 'no-vlan', vlan: 5, vni: 9 }, ['physicalInterface', 'vlan', 'vni']],
      [{ type: 'vlan', physicalInterface: 'eth0' }, ['vlan']],
      [{ type: 'vlan', vlan: 3 }, ['physicalInterface']],
      [{ type: 'vxlan', vlan: 3 }, ['vlan', 'vxlanPoolUuid']],
    ];
    for (const [body, fields] of cases) {
      const res = await t.admin.post('/v1/l2-networks', { ...base, ...body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual(fieldsOf(res.body), fields, JSON.stringify(body));
    }
    const pool = await made(t.admin, '/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 300,
      vniEnd: 310,
    });
    const outside = await t.admin.post('/v1/l2-networks', {
      ...base,
      type: 'vxlan',
      vxlanPoolUuid: pool,
      vni: 311,
    });
    assert.equal(outside.status, 400);
    assert.deepEqual(fieldsOf(outside.body), ['vni']);
    const wrongZone = await t.admin.post('/v1/l2-networks', {
      ...base,
      zoneUuid: otherZone,
      type: 'vxlan',
      vxlanPoolUuid: pool,
    });
    assert.equal(wrongZone.status, 400);
    assert.deepEqual(fieldsOf(wrongZone.body), ['vxlanPoolUuid']);
    assert.equal(
      (await acme.post('/v1/l2-networks', { ...base, type: 'no-vlan', physicalInterface: 'eth9' })).status,
      403,
    );
  });

  test('one L2 per interface and VLAN in a zone, one per VNI', async () => {
    const vlan = { zoneUuid: env.zone, type: 'vlan', physicalInterface: 'eth1', vlan: 10 };
    await made(t.admin, '/v1/l2-networks', { name: name('l2'), ...vlan });
    const again = await t.admin.post('/v1/l2-networks', { name: name('l2'), ...vlan });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'L2_NETWORK_INTERFACE_TAKEN');
    // another VLAN, the untagged interface, or another zone are other networks
    await made(t.admin, '/v1/l2-networks', { name: name('l2'), ...vlan, vlan: 11 });
    await made(t.admin, '/v1/l2-networks', {
      name: name('l2'),
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: 'eth1',
    });
    await made(t.admin, '/v1/l2-networks', { name: name('l2'), ...vlan, zoneUuid: otherZone });
    const flat = await t.admin.post('/v1/l2-networks', {
      name: name('l2'),
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: 'eth1',
    });
    assert.equal(flat.body.error.code, 'L2_NETWORK_INTERFACE_TAKEN');

    const pool = await made(t.admin, '/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 400,
      vniEnd: 402,
    });
    const vx = { zoneUuid: env.zone, type: 'vxlan', vxlanPoolUuid: pool };
    const vniOf = async (uuid: string) => (await t.admin.get(`/v1/l2-networks/${uuid}`)).body.vni;
    assert.equal(await vniOf(await made(t.admin, '/v1/l2-networks', { name: name('vx'), ...vx })), 400);
    await made(t.admin, '/v1/l2-networks', { name: name('vx'), ...vx, vni: 401 });
    const taken = await t.admin.post('/v1/l2-networks', { name: name('vx'), ...vx, vni: 401 });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'L2_NETWORK_VNI_TAKEN');
    assert.equal(await vniOf(await made(t.admin, '/v1/l2-networks', { name: name('vx'), ...vx })), 402);
    const full = await t.admin.post('/v1/l2-networks', { name: name('vx'), ...vx });
    assert.equal(full.status, 409);
    assert.equal(full.body.error.code, 'VXLAN_POOL_EXHAUSTED');
    const busy = await t.admin.delete(`/v1/vxlan-pools/${pool}`);
    assert.equal(busy.body.error.code, 'VXLAN_POOL_HAS_L2_NETWORKS');
  });

  test('concurrent creates on one pool get distinct VNIs (the lowest free ones)', async () => {
    const pool = await made(t.admin, '/v1/vxlan-pools', {
      name: name('pool'),
      zoneUuid: env.zone,
      vniStart: 500,
      vniEnd: 599,
    });
    const uuids = await Promise.all(
      Array.from({ length: 8 }, () =>
        made(t.admin, '/v1/l2-networks', {
          name: name('vx'),
          zoneUuid: env.zone,
          type: 'vxlan',
          vxlanPoolUuid: pool,
        }),
      ),
    );
    const vnis = await Promise.all(
      uuids.map(async (u) => (await t.admin.get(`/v1/l2-networks/${u}`)).body.vni),
    );
    assert.deepEqual(
      vnis.sort((a, b) => a - b),
      [500, 501, 502, 503, 504, 505, 506, 507],
    );
  });

  test('attach and detach clusters; clusterUuids shown; the scheduler sees the attachment; detach refused while a VM there has a NIC on it', async () => {
    const l2 = await made(t.admin, '/v1/l2-networks', {
      name: name('l2'),
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: 'eth5',
    });
    await ok(t, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: env.cluster });
    await ok(t, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: env.cluster }); // idempotent
    assert.deepEqual((await t.admin.get(`/v1/l2-networks/${l2}`)).body.clusterUuids, [env.cluster]);
    const listed = await t.admin.get(`/v1/l2-networks?q=uuid=${l2}`);
    assert.deepEqual(listed.body.items[0].clusterUuids, [env.cluster]);
    const attached = await t.admin.get(`/v1/l2-networks?q=clusterRefs.clusterUuid=${env.cluster}`);
    assert.ok(attached.body.items.some((i: any) => i.uuid === l2));
    const mismatch = await t.admin.post(`/v1/l2-networks/${l2}/actions/attach-cluster`, {
      clusterUuid: otherCluster,
    });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.error.code, 'L2_NETWORK_ZONE_MISMATCH');

    const snapshot = new CandidateSnapshot(t.db.db);
    const hosts = await snapshot.freshView(env.image);
    assert.ok(hosts.length > 0);
    for (const h of hosts) assert.ok(h.l2NetworkUuids.includes(l2), `host ${h.uuid} lacks ${l2}`);

    // a NIC of a VM in the cluster keeps the L2 there (written directly: NICs are another kind's)
    const vm = await runningVm(t, env);
    const l3 = await made(t.admin, '/v1/l3-networks', {
      name: name('l3'),
      l2NetworkUuid: l2,
      category: 'private',
    });
    const nic = newId();
    await t.db.db
      .insertInto('vmNics')
      .values({
        uuid: nic,
        vmUuid: vm,
        l3NetworkUuid: l3,
        l2NetworkUuid: l2,
        accountUuid: newId(),
        mac: 'fa:16:3e:00:00:01',
        ip: null,
        ipAddressUuid: null,
        deviceId: 9,
        hostUuid: null,
      })
      .execute();
    const refused = await t.admin.job('POST', `/v1/l2-networks/${l2}/actions/detach-cluster`, {
      clusterUuid: env.cluster,
    });
    assert.equal(refused.state, 'Failed');
    assert.equal(refused.error.code, 'L2_NETWORK_IN_USE');
    const held = await t.admin.delete(`/v1/l2-networks/${l2}`);
    assert.equal(held.body.error.code, 'L2_NETWORK_HAS_L3_NETWORKS');
    await t.db.db.deleteFrom('vmNics').where('uuid', '=', nic).execute();
    await ok(t, 'DELETE', `/v1/l3-networks/${l3}`);
    assert.equal((await t.admin.delete(`/v1/l2-networks/${l2}`)).body.error.code, 'L2_NETWORK_HAS_CLUSTERS');
    await ok(t, 'POST', `/v1/l2-networks/${l2}/actions/detach-cluster`, { clusterUuid: env.cluster });
    assert.deepEqual((await t.admin.get(`/v1/l2-networks/${l2}`)).body.clusterUuids, []);
    for (const h of await snapshot.freshView(env.image)) assert.ok(!h.l2NetworkUuids.includes(l2));
    await ok(t, 'DELETE', `/v1/l2-networks/${l2}`);
  });
});

describe('l3 networks and ranges', () => {
  let l2: string;
  before(async () => {
    l2 = await made(t.admin, '/v1/l2-networks', {
      name: name('l2'),
      zoneUuid: env.zone,
      type: 'vlan',
      physicalInterface: 'eth2',
      vlan: 100,
    });
  });

  test('a tenant makes private L3s; public/system categories and shared are the admin’s, refused naming the field', async () => {
    const mine = await made(acme, '/v1/l3-networks', {
      name: 'acme-net',
      l2NetworkUuid: l2,
      category: 'private',
      dns: ['1.1.1.1'],
    });
    const got = (await acme.get(`/v1/l3-networks/${mine}`)).body;
    assert.equal(got.zoneUuid, env.zone);
    assert.equal(got.shared, false);
    assert.deepEqual(got.dns, ['1.1.1.1']);
    assert.deepEqual([got.ipTotal, got.ipUsed, got.ipFree], [0, 0, 0]);
    for (const [body, field] of [
      [{ category: 'public' }, 'category'],
      [{ category: 'system' }, 'category'],
      [{ category: 'private', shared: true }, 'shared'],
    ] as const) {
      const res = await acme.post('/v1/l3-networks', { name: name('x'), l2NetworkUuid: l2, ...body });
      assert.equal(res.status, 403, JSON.stringify(body));
      assert.equal(res.body.error.details.field, field);
      assert.match(res.body.error.message, new RegExp(`^${field}:`));
    }
    const dup = await acme.post('/v1/l3-networks', {
      name: 'acme-net',
      l2NetworkUuid: l2,
      category: 'private',
    });
    assert.equal(dup.body.error.code, 'L3_NETWORK_NAME_TAKEN');
    // another account may use the same name
    await made(globex, '/v1/l3-networks', { name: 'acme-net', l2NetworkUuid: l2, category: 'private' });
  });

  test('dns, host routes, L2 and the router offering are checked, every bad field at once', async () => {
    const res = await acme.post('/v1/l3-networks', {
      name: name('x'),
      l2NetworkUuid: l2,
      category: 'private',
      dns: ['8.8.8.8', 'dns.example'],
      hostRoutes: [
        { destination: '10.1.0.1/16', nexthop: 'gw' },
        { destination: '10.2.0.0/16', nexthop: '10.0.0.1' },
      ],
    });
    assert.equal(res.status, 400);
    assert.deepEqual(fieldsOf(res.body), ['dns[1]', 'hostRoutes[0].destination', 'hostRoutes[0].nexthop']);
    const noL2 = await acme.post('/v1/l3-networks?wait=true', {
      name: name('x'),
      l2NetworkUuid: newId(),
      category: 'private',
    });
    assert.equal(noL2.body.error.code, 'L2_NETWORK_NOT_FOUND');
    const noOffering = await acme.post('/v1/l3-networks', {
      name: name('x'),
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'virtual-router',
    });
    assert.equal(noOffering.status, 400);
    assert.deepEqual(fieldsOf(noOffering.body), ['virtualRouterOfferingUuid']);
    const update = await acme.patch(
      `/v1/l3-networks/${await made(acme, '/v1/l3-networks', { name: name('x'), l2NetworkUuid: l2, category: 'private' })}`,
      { dns: ['nope'] },
    );
    assert.equal(update.status, 400);
    assert.deepEqual(fieldsOf(update.body), ['dns[0]']);
  });

  test('provider virtual-router takes the zone’s default offering unless one is given', async () => {
    const pub = await made(t.admin, '/v1/l3-networks', {
      name: name('pub'),
      l2NetworkUuid: l2,
      category: 'public',
      shared: true,
    });
    const offering = newId();
    await t.db.db
      .insertInto('virtualRouterOfferings')
      .values({
        uuid: offering,
        name: name('vro'),
        description: null,
        accountUuid: newId(),
        zoneUuid: env.zone,
        cpu: 1,
        memory: 1024 ** 3,
        imageUuid: env.image,
        managementL3NetworkUuid: pub,
        publicL3NetworkUuid: pub,
        isDefault: true,
      })
      .execute();
    const routed = await made(acme, '/v1/l3-networks', {
      name: name('vr'),
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'virtual-router',
    });
    assert.equal((await acme.get(`/v1/l3-networks/${routed}`)).body.virtualRouterOfferingUuid, offering);
    const unknown = await acme.post('/v1/l3-networks?wait=true', {
      name: name('vr'),
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'virtual-router',
      virtualRouterOfferingUuid: newId(),
    });
    assert.deepEqual(fieldsOf(unknown.body), ['virtualRouterOfferingUuid']);
    // the public L3 is held by the offering
    assert.equal(
      (await t.admin.delete(`/v1/l3-networks/${pub}`)).body.error.code,
      'L3_NETWORK_HAS_VIRTUAL_ROUTER_OFFERINGS',
    );
    await ok(t, 'DELETE', `/v1/l3-networks/${routed}`);
    await t.db.db.deleteFrom('virtualRouterOfferings').where('uuid', '=', offering).execute();
  });

  test('ranges: fields checked (all at once), overlaps refused, reserved ones inside a normal one, capacity shown', async () => {
    const l3 = await made(acme, '/v1/l3-networks', {
      name: name('l3'),
      l2NetworkUuid: l2,
      category: 'private',
    });
    const bad = async (body: Record<string, unknown>, fields: string[]) => {
      const res = await acme.post('/v1/ip-ranges', { name: name('r'), l3NetworkUuid: l3, ...body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, 'IP_RANGE_INVALID');
      assert.deepEqual(fieldsOf(res.body), fields, JSON.stringify(body));
    };
    await bad({}, ['cidr']);
    await bad({ cidr: '10.0.0.1/24' }, ['cidr']);
    await bad({ cidr: 'fd00::/64' }, ['cidr']);
    await bad({ cidr: '10.0.0.0/24', startIp: '10.0.0.1', endIp: '10.0.0.9', prefixLength: 24 }, ['cidr']);
    await bad({ startIp: '10.0.0.9', endIp: '10.0.0.1', prefixLength: 24 }, ['endIp']);
    await bad({ startIp: '10.0.0.1', endIp: '10.0.1.1', prefixLength: 24 }, ['endIp']);
    await bad({ startIp: '10.0.0.1', endIp: '10.0.0.9' }, ['prefixLength']);
    await bad({ startIp: '10.0.0.1', endIp: '10.0.0.9', netmask: '255.0.255.0' }, ['netmask']);
    await bad({ startIp: '10.0.0.1', endIp: '10.0.0.9', netmask: '255.255.255.0', prefixLength: 16 }, [
      'prefixLength',
    ]);
    await bad({ startIp: '10.0.0.1', endIp: 'fd00::9', prefixLength: 24, gateway: '10.0.1.1' }, [
      'endIp',
      'gateway',
    ]);
    await bad({ startIp: '10.0.0.0', endIp: '10.0.0.255', prefixLength: 24 }, ['endIp', 'startIp']);
    await bad({ type: 'reserved', startIp: '10.0.0.5', endIp: '10.0.0.6', gateway: '10.0.0.1' }, ['gateway']);

    const r1 = await made(acme, '/v1/ip-ranges', { name: name('r'), l3NetworkUuid: l3, cidr: '10.0.0.0/24' });
    const range = (await acme.get(`/v1/ip-ranges/${r1}`)).body;
    assert.deepEqual(
      [
        range.startIp,
        range.endIp,
        range.gateway,
        range.prefixLength,
        range.netmask,
        range.ipVersion,
        range.type,
      ],
      ['10.0.0.1', '10.0.0.254', '10.0.0.1', 24, '255.255.255.0', 4, 'normal'],
    );
    const overlap = await acme.post('/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      startIp: '10.0.0.200',
      endIp: '10.0.1.10',
      prefixLength: 16,
    });
    assert.equal(overlap.status, 409);
    assert.equal(overlap.body.error.code, 'IP_RANGE_OVERLAPS');
    const outside = await acme.post('/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      type: 'reserved',
      startIp: '10.0.1.5',
      endIp: '10.0.1.6',
    });
    assert.equal(outside.body.error.code, 'IP_RANGE_INVALID');
    const reserved = await made(acme, '/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      type: 'reserved',
      startIp: '10.0.0.10',
      endIp: '10.0.0.19',
    });
    assert.equal((await acme.get(`/v1/ip-ranges/${reserved}`)).body.prefixLength, 24);
    const twice = await acme.post('/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      type: 'reserved',
      startIp: '10.0.0.19',
      endIp: '10.0.0.20',
    });
    assert.equal(twice.body.error.code, 'IP_RANGE_OVERLAPS');
    await made(acme, '/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      startIp: '10.0.1.1',
      endIp: '10.0.1.100',
      netmask: '255.255.255.0',
      gateway: '10.0.1.1',
    });
    const cap = (await acme.get(`/v1/l3-networks/${l3}`)).body;
    assert.deepEqual([cap.ipTotal, cap.ipUsed, cap.ipFree], [253 - 10 + 99, 0, 253 - 10 + 99]);
    const listed = (await acme.get(`/v1/l3-networks?q=uuid=${l3}&fields=uuid,ipFree`)).body.items[0];
    assert.equal(listed.ipFree, 342);
    // the normal range holding the reserved one stays until the reserved one goes
    assert.equal((await acme.delete(`/v1/ip-ranges/${r1}`)).body.error.code, 'IP_RANGE_IN_USE');
    const held = await acme.delete(`/v1/l3-networks/${l3}`);
    assert.equal(held.body.error.code, 'L3_NETWORK_HAS_IP_RANGES');
  });

  test('20 concurrent overlapping range creates on one L3: exactly one succeeds', async () => {
    const l3 = await made(acme, '/v1/l3-networks', {
      name: name('l3'),
      l2NetworkUuid: l2,
      category: 'private',
    });
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        acme.post('/v1/ip-ranges?wait=true', {
          name: `race-${i}`,
          l3NetworkUuid: l3,
          startIp: `10.5.0.${10 + i}`,
          endIp: '10.5.0.100',
          prefixLength: 24,
        }),
      ),
    );
    const codes = res.map((r) => (r.status === 200 ? r.body.state : r.body.error.code));
    assert.equal(codes.filter((c) => c === 'Succeeded').length, 1, JSON.stringify(codes));
    assert.equal(codes.filter((c) => c === 'IP_RANGE_OVERLAPS').length, 19);
    assert.equal((await acme.get(`/v1/ip-ranges?q=l3NetworkUuid=${l3}&count=true`)).body.items.length, 1);
  });

  test('IPv6 L3: ranges by cidr and by bounds', async () => {
    const l3 = await made(acme, '/v1/l3-networks', {
      name: name('v6'),
      l2NetworkUuid: l2,
      category: 'private',
      ipVersion: 6,
    });
    const r = await made(acme, '/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      cidr: '2001:db8:1::/120',
    });
    const range = (await acme.get(`/v1/ip-ranges/${r}`)).body;
    assert.deepEqual(
      [range.startIp, range.endIp, range.gateway, range.netmask],
      ['2001:db8:1::1', '2001:db8:1::ff', '2001:db8:1::1', null],
    );
    assert.equal((await acme.get(`/v1/l3-networks/${l3}`)).body.ipFree, 254);
    const v4 = await acme.post('/v1/ip-ranges', { name: name('r'), l3NetworkUuid: l3, cidr: '10.0.0.0/24' });
    assert.deepEqual(fieldsOf(v4.body), ['cidr']);
    const mask = await acme.post('/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: l3,
      startIp: '2001:db8:2::1',
      endIp: '2001:db8:2::9',
      netmask: '255.255.255.0',
    });
    assert.deepEqual(fieldsOf(mask.body), ['netmask']);
  });

  test('accounts: another account’s private L3 is invisible (404, also to add ranges to); a shared one is visible but not changeable', async () => {
    const mine = await made(acme, '/v1/l3-networks', {
      name: name('private'),
      l2NetworkUuid: l2,
      category: 'private',
    });
    const shared = await made(t.admin, '/v1/l3-networks', {
      name: name('shared'),
      l2NetworkUuid: l2,
      category: 'public',
      shared: true,
    });
    assert.equal((await globex.get(`/v1/l3-networks/${mine}`)).status, 404);
    const list = (await globex.get('/v1/l3-networks?limit=1000')).body.items.map((i: any) => i.uuid);
    assert.ok(!list.includes(mine));
    assert.ok(list.includes(shared));
    assert.equal((await globex.get(`/v1/l3-networks/${shared}`)).status, 200);
    const range = await globex.post('/v1/ip-ranges', {
      name: 'steal',
      l3NetworkUuid: mine,
      cidr: '10.7.0.0/24',
    });
    assert.equal(range.status, 400);
    assert.equal(range.body.error.code, 'L3_NETWORK_NOT_FOUND');
    assert.equal(
      (await globex.post('/v1/ip-ranges', { name: 'x', l3NetworkUuid: shared, cidr: '10.8.0.0/24' })).status,
      403,
    );
    assert.equal((await globex.patch(`/v1/l3-networks/${shared}`, { name: 'mine-now' })).status, 403);
    assert.equal((await globex.post(`/v1/l3-networks/${shared}/actions/disable`, {})).status, 403);
    assert.equal((await globex.delete(`/v1/l3-networks/${shared}`)).status, 403);
    assert.equal((await globex.patch(`/v1/l3-networks/${mine}`, { name: 'x' })).status, 404);
    // the admin adds a range to a tenant's L3: the range is the tenant's
    const r = await made(t.admin, '/v1/ip-ranges', {
      name: name('r'),
      l3NetworkUuid: mine,
      cidr: '10.9.0.0/24',
    });
    assert.equal((await acme.get(`/v1/ip-ranges/${r}`)).status, 200);
    assert.equal((await globex.get(`/v1/ip-ranges/${r}`)).status, 404);
    // enable/disable by the owner
    await acme.job('POST', `/v1/l3-networks/${mine}/actions/disable`, {});
    assert.equal((await acme.get(`/v1/l3-networks/${mine}`)).body.state, 'Disabled');
  });
});
