/**
 * Virtual routers made on demand across management nodes (docs/network.md "Virtual routers"):
 * two nodes on one database, 100 VMs created at once on a new virtual-router L3 — half through
 * each node's API, so half the create chains run on each node — make exactly one router, with one
 * appliance VM holding the L3's gateway; after the router is deleted through the other node, 20
 * more VMs arriving on both nodes at once make exactly one new one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { assertInvariants } from '../support/invariants.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, succeed, tenant, vrL3 } from './router-fixtures.js';

let db: TestDatabase;
let a: TestNode;
let b: TestNode;
let env: RouterEnv;
/** the tenant's clients on node A and node B */
let onA: Api;
let onB: Api;

before(async () => {
  db = await createTestDatabase({ max: 5 });
  a = await startTestNode({ database: db, nodeName: 'vr-node-a' });
  b = await startTestNode({ database: db, nodeName: 'vr-node-b' });
  env = await buildRouterEnv(a, { prefix: 'vrn', hosts: 8 });
  onA = (await tenant(a, 'vrn-alice')).api;
  onB = await b.anon.login('vrn-alice', 'vrn-alice-password');
});
after(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await db?.drop();
});

/** `perNode` VM creates with one NIC on `l3` through each node's API, all at once. */
async function burst(l3: string, perNode: number, tag: string): Promise<any[]> {
  const create = (api: Api, i: number) =>
    api.job('POST', '/v1/vms', {
      name: `${tag}-${i}`,
      imageUuid: env.image,
      cpu: 1,
      memory: 64 * 1024 ** 2,
      l3NetworkUuids: [l3],
    });
  return Promise.all(Array.from({ length: perNode * 2 }, (_, i) => create(i % 2 === 0 ? onA : onB, i)));
}

/**
 * Asserts the L3 has exactly one router, Running, whose one appliance VM is Running and holds
 * the gateway on its guest NIC, and no address on the L3 is held twice; returns the router.
 */
async function assertOneRouter(l3: string, gateway: string, vmNics: number) {
  const routers = await db.db
    .selectFrom('virtualRouters')
    .selectAll()
    .where('l3NetworkUuid', '=', l3)
    .execute();
  assert.equal(routers.length, 1, 'exactly one router row for the L3');
  const router = routers[0]!;
  assert.equal(router.state, 'Running');
  assert.equal(router.status, 'Connected');
  const appliances = await sql<{ uuid: string; state: string }>`
    select uuid, state from vms where placement->>'applianceOf' = ${router.uuid}`.execute(db.db);
  assert.equal(appliances.rows.length, 1, 'exactly one appliance VM for the router');
  assert.equal(appliances.rows[0]!.uuid, router.vmUuid);
  assert.equal(appliances.rows[0]!.state, 'Running');
  const strays = await sql<{ uuid: string }>`
    select v.uuid from vms v
    where v.placement->>'applianceOf' is not null
      and not exists (select 1 from virtual_routers r where r.vm_uuid = v.uuid)`.execute(db.db);
  assert.deepEqual(strays.rows, [], 'no appliance VM without its router');

  assert.equal(router.guestIp, gateway, 'the router’s guest address is the gateway');
  const atGateway = await db.db
    .selectFrom('ipAddresses')
    .select(['uuid', 'vmUuid'])
    .where('l3NetworkUuid', '=', l3)
    .where('ip', '=', gateway)
    .execute();
  assert.equal(atGateway.length, 1, 'the gateway address is allocated once');
  assert.equal(atGateway[0]!.vmUuid, router.vmUuid);
  const guestNic = await db.db
    .selectFrom('vmNics')
    .select(['ip', 'ipAddressUuid'])
    .where('vmUuid', '=', router.vmUuid!)
    .where('l3NetworkUuid', '=', l3)
    .execute();
  assert.deepEqual(
    guestNic,
    [{ ip: gateway, ipAddressUuid: atGateway[0]!.uuid }],
    'one guest NIC, on the gateway',
  );

  const nics = await db.db
    .selectFrom('vmNics')
    .select(['ip', 'mac'])
    .where('l3NetworkUuid', '=', l3)
    .execute();
  assert.equal(nics.length, vmNics + 1, 'the VMs’ NICs and the router’s');
  assert.equal(new Set(nics.map((n) => n.ip)).size, nics.length, 'no address held by two NICs');
  assert.ok(nics.every((n) => n.ip));
  assert.equal(new Set(nics.map((n) => n.mac)).size, nics.length, 'no MAC held by two NICs');
  await assertNewestConfig(router, l3);
  return router;
}

/**
 * Each node's simulator keeps what its node sent (a real router is one agent): the newest
 * configuration either node sent is the one the row records, and it serves every VM NIC of the
 * L3 — made on either node — but the router's own.
 */
async function assertNewestConfig(
  router: { uuid: string; vmUuid: string | null; configVersion: unknown },
  l3: string,
) {
  const sent = [a, b]
    .map((n) => n.node.services.deps.simulator.networks.router(router.uuid))
    .filter((s) => s !== undefined)
    .sort((x, y) => y.version - x.version);
  assert.ok(sent.length > 0, 'the router received a configuration');
  const newest = sent[0]!;
  assert.equal(newest.version, Number(router.configVersion));
  const nics = await db.db
    .selectFrom('vmNics')
    .select('uuid')
    .where('l3NetworkUuid', '=', l3)
    .where('vmUuid', '<>', router.vmUuid!)
    .execute();
  assert.deepEqual(
    newest.state.dhcp.map((e) => e.nicUuid).sort(),
    nics.map((n) => n.uuid).sort(),
    'one DHCP entry per VM NIC',
  );
}

/** Asserts every job succeeded, its VM is Running, and the chains ran on both nodes. */
async function assertAllRunning(jobs: any[]) {
  assert.deepEqual(
    jobs.filter((j) => j.state !== 'Succeeded').map((j) => [j.state, j.error]),
    [],
    'every create succeeded',
  );
  const uuids = jobs.map((j) => j.resourceUuid as string);
  const states = await db.db.selectFrom('vms').select('state').where('uuid', 'in', uuids).execute();
  assert.equal(states.length, jobs.length);
  assert.ok(
    states.every((s) => s.state === 'Running'),
    JSON.stringify(states.filter((s) => s.state !== 'Running')),
  );
  const owners = await db.db
    .selectFrom('jobs')
    .select(['ownerNode', (eb) => eb.fn.countAll<string>().as('n')])
    .where(
      'uuid',
      'in',
      jobs.map((j) => j.uuid as string),
    )
    .groupBy('ownerNode')
    .execute();
  assert.deepEqual(
    owners.map((o) => Number(o.n)),
    [jobs.length / 2, jobs.length / 2],
    'half the chains ran on each node',
  );
}

describe('a virtual router made once across two management nodes', () => {
  test('100 VMs arriving on two nodes at once make one router; after its delete, 20 more make one new one', async () => {
    const { l3, cidr } = await vrL3(env, onA, 'vrn-burst');
    const gateway = cidr.replace(/0\/24$/, '1');

    const first = await burst(l3, 50, 'vrn-first');
    await assertAllRunning(first);
    const router = await assertOneRouter(l3, gateway, 100);
    await assertInvariants(db.db);

    await succeed(onB, 'DELETE', `/v1/virtual-routers/${router.uuid}`);
    assert.equal(
      await db.db
        .selectFrom('virtualRouters')
        .select('uuid')
        .where('l3NetworkUuid', '=', l3)
        .executeTakeFirst(),
      undefined,
    );
    assert.equal(
      await db.db.selectFrom('vms').select('uuid').where('uuid', '=', router.vmUuid!).executeTakeFirst(),
      undefined,
      'the old appliance is expunged',
    );

    const second = await burst(l3, 10, 'vrn-second');
    await assertAllRunning(second);
    const again = await assertOneRouter(l3, gateway, 120);
    assert.notEqual(again.uuid, router.uuid);
    assert.notEqual(again.vmUuid, router.vmUuid);
    await assertInvariants(db.db);
  });
});
