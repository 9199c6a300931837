/**
 * VIPs, EIPs and port forwarding through the API (docs/network.md "VIPs, EIPs, port forwarding"):
 * virtual-router offerings' checks; a VIP takes an address of a public L3 and gives it back on
 * delete; an EIP maps its VIP onto one NIC (attach, move, detach), a VIP serves one kind of
 * service, one EIP per NIC, another account's NIC is "not found"; port-forwarding rules refuse
 * overlapping VIP ranges — also when 20 arrive at once — and the router's configuration follows
 * every change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RouterConfig } from '../../src/contract/agent.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, refused, succeed, tenant, vmOn, vrL3 } from './router-fixtures.js';
import { GiB } from './vm-env.js';

let t: TestNode;
let env: RouterEnv;
let alice: { api: Api; uuid: string };
let bob: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'vep' });
  alice = await tenant(t, 'vep-alice');
  bob = await tenant(t, 'vep-bob');
});
after(() => t.stop());

const addressOf = (ip: string) =>
  t.db.db
    .selectFrom('ipAddresses')
    .selectAll()
    .where('l3NetworkUuid', '=', env.publicL3)
    .where('ip', '=', ip)
    .executeTakeFirst();

/** an address of the public range nobody holds */
async function freePublicIp(): Promise<string> {
  const range = await t.db.db
    .selectFrom('ipRanges')
    .select('endIp')
    .where('l3NetworkUuid', '=', env.publicL3)
    .executeTakeFirstOrThrow();
  const [a, b, c, d] = range.endIp.split('.').map(Number) as [number, number, number, number];
  for (let last = d; last > 1; last--) {
    const ip = `${a}.${b}.${c}.${last}`;
    if (!(await addressOf(ip))) return ip;
  }
  throw new Error('no free address');
}

async function vip(api: Api, extra: Record<string, unknown> = {}): Promise<{ uuid: string; ip: string }> {
  const job = await succeed(api, 'POST', '/v1/vips', {
    name: `vip-${Math.random().toString(36).slice(2, 8)}`,
    l3NetworkUuid: env.publicL3,
    ...extra,
  });
  return { uuid: job.resourceUuid, ip: job.result.ip };
}

function routerConfigOf(l3: string): Promise<RouterConfig | undefined> {
  return t.db.db
    .selectFrom('virtualRouters')
    .select('uuid')
    .where('l3NetworkUuid', '=', l3)
    .executeTakeFirst()
    .then((r) => (r ? t.node.services.deps.simulator.networks.router(r.uuid)?.state : undefined));
}

describe('virtual-router offerings', () => {
  test('every bad reference is reported at once; the public L3 must be public', async () => {
    const body = await refused(
      t.admin,
      'POST',
      '/v1/virtual-router-offerings',
      {
        name: 'bad-offering',
        zoneUuid: env.zone,
        cpu: 1,
        memory: GiB,
        imageUuid: '00000000-0000-4000-8000-000000000001',
        managementL3NetworkUuid: '00000000-0000-4000-8000-000000000002',
        publicL3NetworkUuid: env.managementL3,
      },
      400,
    );
    const fields = ((body.details?.fields ?? []) as Array<{ field: string }>).map((f) => f.field).sort();
    assert.deepEqual(fields, ['imageUuid', 'managementL3NetworkUuid', 'publicL3NetworkUuid']);
    assert.equal(
      await t.db.db
        .selectFrom('virtualRouterOfferings')
        .select('uuid')
        .where('name', '=', 'bad-offering')
        .executeTakeFirst(),
      undefined,
    );
  });

  test('one default per zone: a second default is refused, a non-default is fine', async () => {
    const body = {
      zoneUuid: env.zone,
      cpu: 1,
      memory: GiB,
      imageUuid: env.image,
      managementL3NetworkUuid: env.managementL3,
      publicL3NetworkUuid: env.publicL3,
    };
    const err = await refused(
      t.admin,
      'POST',
      '/v1/virtual-router-offerings',
      { ...body, name: 'second-default', isDefault: true },
      409,
    );
    assert.equal(err.code, 'VIRTUAL_ROUTER_OFFERING_DEFAULT_TAKEN');
    const other = await succeed(t.admin, 'POST', '/v1/virtual-router-offerings', {
      ...body,
      name: 'not-default',
    });
    assert.equal(other.result.isDefault, false);
    await succeed(t.admin, 'POST', `/v1/virtual-router-offerings/${other.resourceUuid}/actions/disable`, {});
    assert.equal(
      (await t.admin.get(`/v1/virtual-router-offerings/${other.resourceUuid}`)).body.state,
      'Disabled',
    );
    await succeed(t.admin, 'DELETE', `/v1/virtual-router-offerings/${other.resourceUuid}`);
  });

  test('tenants read offerings but may not create them; delete is refused while L3s use it', async () => {
    assert.equal((await alice.api.get(`/v1/virtual-router-offerings/${env.offering}`)).status, 200);
    const res = await alice.api.post('/v1/virtual-router-offerings', {
      name: 'x',
      zoneUuid: env.zone,
      cpu: 1,
      memory: GiB,
      imageUuid: env.image,
      managementL3NetworkUuid: env.managementL3,
      publicL3NetworkUuid: env.publicL3,
    });
    assert.equal(res.status, 403);
    const { l3 } = await vrL3(env, alice.api);
    assert.equal(
      (await alice.api.get(`/v1/l3-networks/${l3}`)).body.virtualRouterOfferingUuid !== undefined,
      true,
    );
    const err = await refused(
      t.admin,
      'DELETE',
      `/v1/virtual-router-offerings/${env.offering}`,
      undefined,
      409,
    );
    assert.equal(err.code, 'VIRTUAL_ROUTER_OFFERING_HAS_L3_NETWORKS');
  });
});

describe('vips', () => {
  test('a VIP takes an address of the public L3 (IPAM used_for vip) and gives it back on delete', async () => {
    const v = await vip(alice.api);
    const held = await addressOf(v.ip);
    assert.equal(held?.usedFor, 'vip');
    assert.equal(held?.ownerUuid, v.uuid);
    assert.equal(held?.accountUuid, alice.uuid);
    const shown = (await alice.api.get(`/v1/vips/${v.uuid}`)).body;
    assert.equal(shown.ip, v.ip);
    assert.equal(shown.usedFor, null);
    await succeed(alice.api, 'DELETE', `/v1/vips/${v.uuid}`);
    assert.equal(await addressOf(v.ip), undefined);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).status, 404);
  });

  test('a static address; a taken one is refused and changes nothing', async () => {
    const v = await vip(alice.api, { ip: await freePublicIp() });
    const again = await refused(
      alice.api,
      'POST',
      '/v1/vips',
      { name: 'dup', l3NetworkUuid: env.publicL3, ip: v.ip },
      409,
    );
    assert.equal(again.code, 'IP_ADDRESS_TAKEN');
    assert.equal(
      await t.db.db.selectFrom('vips').select('uuid').where('name', '=', 'dup').executeTakeFirst(),
      undefined,
    );
  });

  test('a VIP needs a public L3 the caller may use', async () => {
    const { l3 } = await vrL3(env, alice.api);
    const err = await refused(alice.api, 'POST', '/v1/vips', { name: 'priv', l3NetworkUuid: l3 }, 400);
    assert.match(err.message, /public/);
    const other = await refused(bob.api, 'POST', '/v1/vips', { name: 'theirs', l3NetworkUuid: l3 }, 400);
    assert.match(other.message, /no L3 network/);
  });

  test("another account's VIP is not found", async () => {
    const v = await vip(alice.api);
    assert.equal((await bob.api.get(`/v1/vips/${v.uuid}`)).status, 404);
    assert.equal((await bob.api.delete(`/v1/vips/${v.uuid}`)).status, 404);
    const eip = await refused(bob.api, 'POST', '/v1/eips', { name: 'steal', vipUuid: v.uuid }, 400);
    assert.equal(eip.code, 'VIP_NOT_FOUND');
  });
});

describe('eips and port forwarding on a virtual-router network', () => {
  let l3: string;
  let vmA: Awaited<ReturnType<typeof vmOn>>;
  let vmB: Awaited<ReturnType<typeof vmOn>>;

  before(async () => {
    ({ l3 } = await vrL3(env, alice.api));
    vmA = await vmOn(t, env, alice.api, [l3]);
    vmB = await vmOn(t, env, alice.api, [l3]);
  });

  test('an EIP maps its VIP onto a NIC: ip and guestIp shown, the router gets it; move and detach follow', async () => {
    const v = await vip(alice.api);
    const nicA = vmA.nics[0]!;
    const nicB = vmB.nics[0]!;
    const made = await succeed(alice.api, 'POST', '/v1/eips', {
      name: 'eip-1',
      vipUuid: v.uuid,
      vmNicUuid: nicA.uuid,
    });
    const eip = made.resourceUuid;
    const shown = (await alice.api.get(`/v1/eips/${eip}`)).body;
    assert.equal(shown.ip, v.ip);
    assert.equal(shown.guestIp, nicA.ip);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).body.usedFor, 'eip');
    assert.deepEqual((await routerConfigOf(l3))?.eips, [{ eipUuid: eip, publicIp: v.ip, guestIp: nicA.ip }]);

    await succeed(alice.api, 'POST', `/v1/eips/${eip}/actions/attach`, { vmNicUuid: nicB.uuid });
    assert.equal((await alice.api.get(`/v1/eips/${eip}`)).body.guestIp, nicB.ip);
    assert.deepEqual((await routerConfigOf(l3))?.eips, [{ eipUuid: eip, publicIp: v.ip, guestIp: nicB.ip }]);
    const list = (await alice.api.get(`/v1/eips?q=guestIp=${nicB.ip}`)).body;
    assert.deepEqual(
      list.items.map((e: { uuid: string }) => e.uuid),
      [eip],
    );

    await succeed(alice.api, 'POST', `/v1/eips/${eip}/actions/detach`, {});
    assert.equal((await alice.api.get(`/v1/eips/${eip}`)).body.guestIp, null);
    assert.deepEqual((await routerConfigOf(l3))?.eips, []);

    await succeed(alice.api, 'DELETE', `/v1/eips/${eip}`);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).body.usedFor, null);
    await succeed(alice.api, 'DELETE', `/v1/vips/${v.uuid}`);
  });

  test('a VIP serves one EIP, one kind of service; one EIP per NIC; a VIP in use is not deleted', async () => {
    const v1 = await vip(alice.api);
    const v2 = await vip(alice.api);
    const nic = vmA.nics[0]!;
    const e1 = (
      await succeed(alice.api, 'POST', '/v1/eips', { name: 'e1', vipUuid: v1.uuid, vmNicUuid: nic.uuid })
    ).resourceUuid;
    assert.equal(
      (await refused(alice.api, 'POST', '/v1/eips', { name: 'e1b', vipUuid: v1.uuid }, 409)).code,
      'VIP_IN_USE',
    );
    const pf = await refused(
      alice.api,
      'POST',
      '/v1/port-forwarding-rules',
      { name: 'pf', vipUuid: v1.uuid, protocol: 'tcp', vipPortStart: 22 },
      409,
    );
    assert.equal(pf.code, 'VIP_IN_USE');
    assert.equal(
      (
        await refused(
          alice.api,
          'POST',
          '/v1/eips',
          { name: 'e2', vipUuid: v2.uuid, vmNicUuid: nic.uuid },
          409,
        )
      ).code,
      'EIP_NIC_TAKEN',
    );
    assert.equal(
      (await alice.api.get(`/v1/vips/${v2.uuid}`)).body.usedFor,
      null,
      'a refused create changed nothing',
    );
    const e2 = (await succeed(alice.api, 'POST', '/v1/eips', { name: 'e2', vipUuid: v2.uuid })).resourceUuid;
    assert.equal(
      (await refused(alice.api, 'POST', `/v1/eips/${e2}/actions/attach`, { vmNicUuid: nic.uuid }, 409)).code,
      'EIP_NIC_TAKEN',
    );
    assert.equal(
      (await refused(alice.api, 'DELETE', `/v1/vips/${v1.uuid}`, undefined, 409)).code,
      'VIP_IN_USE',
    );
    await succeed(alice.api, 'DELETE', `/v1/eips/${e1}`);
    await succeed(alice.api, 'DELETE', `/v1/eips/${e2}`);
    // freed: now port forwarding may use v1
    await succeed(alice.api, 'POST', '/v1/port-forwarding-rules', {
      name: 'pf-after',
      vipUuid: v1.uuid,
      protocol: 'tcp',
      vipPortStart: 22,
    });
  });

  test("another account's NIC is not found; a NIC on a flat network is not routed", async () => {
    const mine = await vip(alice.api);
    const theirs = await vip(bob.api);
    const e = (await succeed(bob.api, 'POST', '/v1/eips', { name: 'bob-eip', vipUuid: theirs.uuid }))
      .resourceUuid;
    assert.equal(
      (await refused(bob.api, 'POST', `/v1/eips/${e}/actions/attach`, { vmNicUuid: vmA.nics[0]!.uuid }, 400))
        .code,
      'VM_NIC_NOT_FOUND',
    );
    assert.equal(
      (
        await refused(
          bob.api,
          'POST',
          '/v1/eips',
          { name: 'x', vipUuid: theirs.uuid, vmNicUuid: vmA.nics[0]!.uuid },
          400,
        )
      ).code,
      'VM_NIC_NOT_FOUND',
    );
    const flat = (
      await succeed(alice.api, 'POST', '/v1/l3-networks', {
        name: 'vep-flat',
        l2NetworkUuid: env.l2,
        category: 'private',
        provider: 'flat',
      })
    ).resourceUuid;
    await succeed(alice.api, 'POST', '/v1/ip-ranges', {
      name: 'vep-flat-range',
      l3NetworkUuid: flat,
      cidr: '10.77.0.0/24',
    });
    const onFlat = await vmOn(t, env, alice.api, [flat]);
    const err = await refused(
      alice.api,
      'POST',
      '/v1/eips',
      { name: 'flat-eip', vipUuid: mine.uuid, vmNicUuid: onFlat.nics[0]!.uuid },
      400,
    );
    assert.equal(err.code, 'EIP_NIC_NOT_ROUTED');
  });

  test('port forwarding: defaults, overlap refused per protocol, attach/detach, the router follows, the last rule frees the VIP', async () => {
    const v = await vip(alice.api);
    const nic = vmA.nics[0]!;
    const r1 = await succeed(alice.api, 'POST', '/v1/port-forwarding-rules', {
      name: 'ssh',
      vipUuid: v.uuid,
      protocol: 'tcp',
      vipPortStart: 2222,
      privatePortStart: 22,
      vmNicUuid: nic.uuid,
    });
    assert.equal(r1.result.vipPortEnd, 2222);
    assert.equal(r1.result.privatePortEnd, 22);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).body.usedFor, 'port-forwarding');
    const overlap = await refused(
      alice.api,
      'POST',
      '/v1/port-forwarding-rules',
      { name: 'o', vipUuid: v.uuid, protocol: 'tcp', vipPortStart: 2200, vipPortEnd: 2300 },
      409,
    );
    assert.equal(overlap.code, 'PORT_FORWARDING_CONFLICT');
    const bad = await refused(
      alice.api,
      'POST',
      '/v1/port-forwarding-rules',
      {
        name: 'b',
        vipUuid: v.uuid,
        protocol: 'udp',
        vipPortStart: 100,
        vipPortEnd: 110,
        privatePortStart: 200,
        privatePortEnd: 205,
      },
      400,
    );
    assert.match(bad.message, /privatePortEnd/);
    const r2 = await succeed(alice.api, 'POST', '/v1/port-forwarding-rules', {
      name: 'dns',
      vipUuid: v.uuid,
      protocol: 'udp',
      vipPortStart: 2200,
      vipPortEnd: 2300,
      privatePortStart: 5200,
    });
    assert.equal(r2.result.privatePortEnd, 5300);
    assert.equal(
      (await refused(alice.api, 'POST', '/v1/eips', { name: 'e', vipUuid: v.uuid }, 409)).code,
      'VIP_IN_USE',
    );

    let cfg = await routerConfigOf(l3);
    assert.deepEqual(
      cfg?.portForwardings.map((p) => [
        p.ruleUuid,
        p.publicIp,
        p.publicPortStart,
        p.guestIp,
        p.privatePortStart,
      ]),
      [[r1.resourceUuid, v.ip, 2222, nic.ip, 22]],
    );
    await succeed(alice.api, 'POST', `/v1/port-forwarding-rules/${r2.resourceUuid}/actions/attach`, {
      vmNicUuid: vmB.nics[0]!.uuid,
    });
    cfg = await routerConfigOf(l3);
    assert.equal(cfg?.portForwardings.length, 2);
    await succeed(alice.api, 'POST', `/v1/port-forwarding-rules/${r1.resourceUuid}/actions/detach`, {});
    cfg = await routerConfigOf(l3);
    assert.deepEqual(
      cfg?.portForwardings.map((p) => p.ruleUuid),
      [r2.resourceUuid],
    );

    await succeed(alice.api, 'DELETE', `/v1/port-forwarding-rules/${r1.resourceUuid}`);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).body.usedFor, 'port-forwarding');
    await succeed(alice.api, 'DELETE', `/v1/port-forwarding-rules/${r2.resourceUuid}`);
    assert.equal((await alice.api.get(`/v1/vips/${v.uuid}`)).body.usedFor, null);
    assert.deepEqual((await routerConfigOf(l3))?.portForwardings, []);
  });
});

describe('a NIC going away', () => {
  test('expunging a VM unmaps its EIP and rules (they stay), and its router drops them', async () => {
    const { l3 } = await vrL3(env, alice.api);
    const vm = await vmOn(t, env, alice.api, [l3]);
    const nic = vm.nics[0]!.uuid;
    const v1 = await vip(alice.api);
    const v2 = await vip(alice.api);
    const eip = (
      await succeed(alice.api, 'POST', '/v1/eips', { name: 'gone-eip', vipUuid: v1.uuid, vmNicUuid: nic })
    ).resourceUuid;
    const rule = (
      await succeed(alice.api, 'POST', '/v1/port-forwarding-rules', {
        name: 'gone-pf',
        vipUuid: v2.uuid,
        protocol: 'udp',
        vipPortStart: 53,
        vmNicUuid: nic,
      })
    ).resourceUuid;
    assert.equal((await routerConfigOf(l3))?.eips.length, 1);
    await succeed(alice.api, 'DELETE', `/v1/vms/${vm.vm}`);
    await succeed(alice.api, 'POST', `/v1/vms/${vm.vm}/actions/expunge`, {});
    assert.equal((await alice.api.get(`/v1/eips/${eip}`)).body.vmNicUuid, null);
    assert.equal((await alice.api.get(`/v1/port-forwarding-rules/${rule}`)).body.vmNicUuid, null);
    const cfg = await routerConfigOf(l3);
    assert.deepEqual([cfg?.eips, cfg?.portForwardings, cfg?.dhcp], [[], [], []]);
  });
});

describe('concurrency', () => {
  test('20 concurrent overlapping port-forwarding creates on one VIP: exactly one is admitted', async () => {
    const v = await vip(alice.api);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        alice.api.post('/v1/port-forwarding-rules', {
          name: `race-${i}`,
          vipUuid: v.uuid,
          protocol: 'tcp',
          vipPortStart: 8000 + i,
          vipPortEnd: 8100,
        }),
      ),
    );
    const admitted = results.filter((r) => r.status === 202);
    const conflicts = results.filter((r) => r.status === 409);
    assert.equal(admitted.length, 1, JSON.stringify(results.map((r) => r.status)));
    assert.equal(conflicts.length, 19);
    for (const c of conflicts)
      assert.equal(c.body.error.code, 'PORT_FORWARDING_CONFLICT', JSON.stringify(c.body));
    const rules = await t.db.db
      .selectFrom('portForwardingRules')
      .select('uuid')
      .where('vipUuid', '=', v.uuid)
      .execute();
    assert.equal(rules.length, 1);
  });

  test('an EIP and a rule racing for one VIP: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const v = await vip(alice.api);
      const [eip, pf] = await Promise.all([
        alice.api.post('/v1/eips', { name: `race-eip-${round}`, vipUuid: v.uuid }),
        alice.api.post('/v1/port-forwarding-rules', {
          name: `race-pf-${round}`,
          vipUuid: v.uuid,
          protocol: 'tcp',
          vipPortStart: 80,
        }),
      ]);
      assert.deepEqual([eip.status, pf.status].sort(), [202, 409]);
    }
  });
});
