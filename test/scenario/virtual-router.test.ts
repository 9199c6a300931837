/**
 * Virtual routers made on demand (docs/network.md "Virtual routers"): 100 VMs created at once on
 * a new virtual-router L3 make exactly one router; the router's configuration (what the simulated
 * host received) holds the DHCP entries of the L3's VMs, SNAT, EIPs and port forwarding;
 * reconnect and reboot re-send it; a router whose appliance cannot be made fails its VMs with
 * VIRTUAL_ROUTER_FAILED and the next VM retries; a deleted router is made again by the next VM.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { RouterConfig } from '../../src/contract/agent.js';
import { newId } from '../../src/kernel/ids.js';
import { ORPHAN_MS } from '../../src/resources/network/virtual-router/ensure.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, succeed, tenant, vmOn, vrL3 } from './router-fixtures.js';
import { clearFaults, fault } from './vm-env.js';

let t: TestNode;
let env: RouterEnv;
let alice: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'vr', hosts: 3 });
  alice = await tenant(t, 'vr-alice');
});
after(() => t.stop());

const routerOf = (l3: string) =>
  t.db.db.selectFrom('virtualRouters').selectAll().where('l3NetworkUuid', '=', l3).executeTakeFirst();
const applied = (routerUuid: string) => t.node.services.deps.simulator.networks.router(routerUuid);
const configOf = (routerUuid: string): RouterConfig | undefined => applied(routerUuid)?.state;

describe('made on demand', () => {
  test('100 concurrent VM creates on a new virtual-router L3 make exactly one router, and every VM gets its DHCP entry', async () => {
    const { l3, cidr } = await vrL3(env, alice.api, 'vr-burst');
    const jobs = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        alice.api.job('POST', '/v1/vms', {
          name: `burst-${i}`,
          imageUuid: env.image,
          cpu: 1,
          memory: 64 * 1024 ** 2,
          l3NetworkUuids: [l3],
        }),
      ),
    );
    const failed = jobs.filter((j) => j.state !== 'Succeeded');
    assert.deepEqual(
      failed.map((j) => j.error),
      [],
      'every create succeeded',
    );
    const routers = await t.db.db
      .selectFrom('virtualRouters')
      .selectAll()
      .where('l3NetworkUuid', '=', l3)
      .execute();
    assert.equal(routers.length, 1);
    const router = routers[0]!;
    assert.equal(router.state, 'Running');
    assert.equal(router.status, 'Connected');
    assert.equal(router.accountUuid, alice.uuid, 'the router is the L3 owner’s');
    const appliances = await sql<{
      uuid: string;
    }>`select uuid from vms where placement->>'applianceOf' = ${router.uuid}`.execute(t.db.db);
    assert.equal(appliances.rows.length, 1, 'one appliance VM');
    const appliance = await t.db.db
      .selectFrom('vms')
      .selectAll()
      .where('uuid', '=', router.vmUuid!)
      .executeTakeFirstOrThrow();
    assert.equal(appliance.state, 'Running');
    assert.notEqual(appliance.accountUuid, alice.uuid, 'the appliance is the admin’s');
    const gateway = cidr.replace(/0\/24$/, '1');
    assert.equal(router.guestIp, gateway, 'the router’s guest address is the gateway');
    assert.ok(router.publicIp && router.managementIp);

    const config = configOf(router.uuid)!;
    assert.ok(config, 'the router received its configuration');
    assert.equal(config.guest.ip, gateway);
    assert.equal(config.guest.prefixLength, 24);
    assert.equal(config.public.ip, router.publicIp);
    assert.deepEqual(config.snat, { publicIp: router.publicIp, guestCidr: cidr });
    assert.deepEqual(config.dns, ['8.8.8.8']);
    assert.equal(config.domainName, 'vr.example');
    const nics = await t.db.db
      .selectFrom('vmNics')
      .select(['uuid', 'ip', 'mac'])
      .where('l3NetworkUuid', '=', l3)
      .where('vmUuid', '<>', router.vmUuid!)
      .orderBy('uuid')
      .execute();
    assert.equal(nics.length, 100);
    assert.deepEqual(
      config.dhcp.map((e) => [e.nicUuid, e.ip, e.mac, e.gateway]),
      nics.map((n) => [n.uuid, n.ip, n.mac, gateway]),
      'one DHCP entry per VM NIC, none for the router’s own',
    );
    assert.equal(Number(router.configVersion), applied(router.uuid)!.version);
    const shown = (await alice.api.get(`/v1/virtual-routers/${router.uuid}`)).body;
    assert.equal(shown.state, 'Running');
    assert.equal(shown.configVersion, Number(router.configVersion));
  });

  test('the configuration carries the L3’s EIPs and port forwarding; reconnect and reboot re-send it', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vr-services');
    const a = await vmOn(t, env, alice.api, [l3]);
    const b = await vmOn(t, env, alice.api, [l3]);
    const router = (await routerOf(l3))!;
    const vip1 = (
      await succeed(alice.api, 'POST', '/v1/vips', { name: 'svc-vip-1', l3NetworkUuid: env.publicL3 })
    ).result;
    const vip2 = (
      await succeed(alice.api, 'POST', '/v1/vips', { name: 'svc-vip-2', l3NetworkUuid: env.publicL3 })
    ).result;
    const eip = (
      await succeed(alice.api, 'POST', '/v1/eips', {
        name: 'svc-eip',
        vipUuid: vip1.uuid,
        vmNicUuid: a.nics[0]!.uuid,
      })
    ).resourceUuid;
    const rule = (
      await succeed(alice.api, 'POST', '/v1/port-forwarding-rules', {
        name: 'svc-web',
        vipUuid: vip2.uuid,
        protocol: 'tcp',
        vipPortStart: 8080,
        vipPortEnd: 8081,
        privatePortStart: 80,
        vmNicUuid: b.nics[0]!.uuid,
        allowedCidr: '203.0.113.0/24',
      })
    ).resourceUuid;
    const expected = {
      eips: [{ eipUuid: eip, publicIp: vip1.ip, guestIp: a.nics[0]!.ip }],
      portForwardings: [
        {
          ruleUuid: rule,
          protocol: 'tcp',
          publicIp: vip2.ip,
          publicPortStart: 8080,
          publicPortEnd: 8081,
          guestIp: b.nics[0]!.ip,
          privatePortStart: 80,
          privatePortEnd: 81,
          allowedCidr: '203.0.113.0/24',
        },
      ],
    };
    const pick = (c: RouterConfig | undefined) => ({ eips: c?.eips, portForwardings: c?.portForwardings });
    assert.deepEqual(pick(configOf(router.uuid)), expected);
    assert.deepEqual(
      configOf(router.uuid)!
        .dhcp.map((e) => e.nicUuid)
        .sort(),
      [a.nics[0]!.uuid, b.nics[0]!.uuid].sort(),
    );

    // the appliance rebooted behind our back: it runs no configuration until reconnect sends it
    const before = applied(router.uuid)!.version;
    t.node.services.deps.simulator.networks.forgetRouter(router.uuid);
    const reconnect = await succeed(
      alice.api,
      'POST',
      `/v1/virtual-routers/${router.uuid}/actions/reconnect`,
      {},
    );
    assert.equal(reconnect.result.status, 'Connected');
    assert.deepEqual(pick(configOf(router.uuid)), expected);
    assert.ok(applied(router.uuid)!.version > before);

    const seq = t.node.services.deps.simulator.networks.lastSeq();
    await succeed(alice.api, 'POST', `/v1/virtual-routers/${router.uuid}/actions/reboot`, {});
    const sent = t.node.services.deps.simulator.networks.commands({
      command: 'router.apply-config',
      afterSeq: seq,
    });
    assert.ok(sent.some((c) => (c.request as { config: RouterConfig }).config.routerUuid === router.uuid));
    assert.deepEqual(pick(configOf(router.uuid)), expected);
  });

  test('another account sees no router; reconnect of a router that is not Running is refused', async () => {
    const bob = await tenant(t, 'vr-bob');
    const { l3 } = await vrL3(env, alice.api, 'vr-private');
    await vmOn(t, env, alice.api, [l3]);
    const router = (await routerOf(l3))!;
    assert.equal((await bob.api.get(`/v1/virtual-routers/${router.uuid}`)).status, 404);
    assert.equal(
      (await bob.api.post(`/v1/virtual-routers/${router.uuid}/actions/reconnect`, {})).status,
      404,
    );
    assert.equal((await t.admin.get(`/v1/virtual-routers/${router.uuid}`)).status, 200);
  });
});

describe('failures and replacement', () => {
  test('an appliance that cannot be made fails the VM with VIRTUAL_ROUTER_FAILED; the next VM makes the router', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vr-fail');
    // the appliance reaches start-on-host while the tenant's VM waits for it (apply-network-services)
    await fault(t, {
      point: 'step:vm.create/start-on-host',
      times: 1,
      error: { code: 'APPLIANCE_BOOT_FAILED' },
    });
    try {
      const job = await alice.api.job('POST', '/v1/vms', {
        name: 'vr-fail-vm',
        imageUuid: env.image,
        instanceOfferingUuid: env.small,
        l3NetworkUuids: [l3],
      });
      assert.equal(job.state, 'Failed', JSON.stringify(job));
      assert.equal(job.error.code, 'VIRTUAL_ROUTER_FAILED');
      assert.equal(job.error.details.l3NetworkUuid, l3);
    } finally {
      await clearFaults(t);
    }
    const broken = (await routerOf(l3))!;
    assert.equal(broken.state, 'Error');
    const nics = await t.db.db.selectFrom('vmNics').select('uuid').where('l3NetworkUuid', '=', l3).execute();
    assert.deepEqual(nics, [], 'the failed VM and the failed appliance left no NIC');

    await vmOn(t, env, alice.api, [l3]);
    const router = (await routerOf(l3))!;
    assert.equal(router.uuid, broken.uuid, 'the Error row was taken over, not duplicated');
    assert.equal(router.state, 'Running');
    assert.equal(configOf(router.uuid)?.dhcp.length, 1);
  });

  test('a router whose maker died before launching its appliance is taken over by the next VM, which succeeds', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vr-orphan');
    const offering = await t.db.db
      .selectFrom('virtualRouterOfferings')
      .select('uuid')
      .where('isDefault', '=', true)
      .executeTakeFirstOrThrow();
    // what a node killed between inserting the row and submitting the appliance leaves behind
    const orphan = newId();
    const longAgo = new Date(Date.now() - 2 * ORPHAN_MS);
    await t.db.db
      .insertInto('virtualRouters')
      .values({
        uuid: orphan,
        name: 'vr-orphan',
        description: null,
        accountUuid: alice.uuid,
        l3NetworkUuid: l3,
        offeringUuid: offering.uuid,
        state: 'Creating',
        status: 'Connecting',
        createdAt: longAgo,
        updatedAt: longAgo,
      })
      .execute();
    await vmOn(t, env, alice.api, [l3]);
    const router = (await routerOf(l3))!;
    assert.equal(router.uuid, orphan, 'the orphaned row was taken over, not duplicated');
    assert.equal(router.state, 'Running');
  });

  test('a deleted router is made again by the next VM; its appliance is expunged', async () => {
    const { l3 } = await vrL3(env, alice.api, 'vr-delete');
    const first = await vmOn(t, env, alice.api, [l3]);
    const router = (await routerOf(l3))!;
    await succeed(alice.api, 'DELETE', `/v1/virtual-routers/${router.uuid}`);
    assert.equal(await routerOf(l3), undefined);
    assert.equal(
      await t.db.db.selectFrom('vms').select('uuid').where('uuid', '=', router.vmUuid!).executeTakeFirst(),
      undefined,
    );
    const held = await t.db.db
      .selectFrom('ipAddresses')
      .select('ip')
      .where('vmUuid', '=', router.vmUuid!)
      .execute();
    assert.deepEqual(held, [], 'the appliance’s addresses were released');
    await vmOn(t, env, alice.api, [l3]);
    const again = (await routerOf(l3))!;
    assert.notEqual(again.uuid, router.uuid);
    assert.equal(again.state, 'Running');
    assert.deepEqual(
      configOf(again.uuid)!
        .dhcp.map((e) => e.nicUuid)
        .includes(first.nics[0]!.uuid),
      true,
      'the new router serves the VMs that were there before',
    );
  });
});
