/**
 * The rollback table of the VIP, EIP, port-forwarding, virtual-router-offering and virtual-router
 * chains (DESIGN.md §7): a failure injected at every step of every chain fails the job with the
 * injected error, rolls every done step back, and leaves the records, the public addresses and
 * the configuration the routers run as they were. A row per chain × step; a chain registered
 * without rows fails the coverage test. Plus a host command failure (router.apply-config).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';
import { buildRouterEnv, type RouterEnv, succeed, tenant, vmOn, vrL3 } from './router-fixtures.js';
import { clearFaults, fault, GiB } from './vm-env.js';

let t: TestNode;
let env: RouterEnv;
let alice: { api: Api; uuid: string };
let l3: string;
let seq = 0;
const next = () => ++seq;

before(async () => {
  t = await startTestNode();
  env = await buildRouterEnv(t, { prefix: 'rrb', hosts: 2 });
  alice = await tenant(t, 'rrb-alice');
  ({ l3 } = await vrL3(env, alice.api, 'rrb-net'));
});
after(() => t.stop());

const FAMILIES = ['vip.', 'eip.', 'port-forwarding-rule.', 'virtual-router-offering.', 'virtual-router.'];

/** What a rollback must leave as it was: records, public addresses, what the routers run. */
async function footprint() {
  const db = t.db.db;
  const [offerings, vips, addresses, eips, rules, routers] = await Promise.all([
    db
      .selectFrom('virtualRouterOfferings')
      .select(['uuid', 'name', 'state', 'isDefault'])
      .orderBy('uuid')
      .execute(),
    db.selectFrom('vips').select(['uuid', 'name', 'usedFor']).orderBy('uuid').execute(),
    db
      .selectFrom('ipAddresses')
      .select(['ip', 'ownerUuid'])
      .where('l3NetworkUuid', '=', env.publicL3)
      .orderBy('ip')
      .execute(),
    db.selectFrom('eips').select(['uuid', 'name', 'vmNicUuid']).orderBy('uuid').execute(),
    db.selectFrom('portForwardingRules').select(['uuid', 'name', 'vmNicUuid']).orderBy('uuid').execute(),
    db.selectFrom('virtualRouters').select(['uuid', 'state', 'vmUuid']).orderBy('uuid').execute(),
  ]);
  const configs = routers.map((r) => t.node.services.deps.simulator.networks.router(r.uuid)?.state);
  return { offerings, vips, addresses, eips, rules, routers, configs };
}

interface Fixture {
  uuid: string;
  nic?: string;
  other?: string;
  vip?: string;
  l3?: string;
}

interface ChainSpec {
  setup(): Promise<Fixture>;
  act(fx: Fixture): Promise<any>;
  /** default: the footprint */
  snapshot?(fx: Fixture): Promise<unknown>;
  /** what a rollback leaves when it differs from "as before" */
  after?(before: any, step: string): unknown;
  atAdmission?: string[];
  steps: string[];
}

const newVip = async () =>
  (await succeed(alice.api, 'POST', '/v1/vips', { name: `rb-vip-${next()}`, l3NetworkUuid: env.publicL3 }))
    .resourceUuid as string;
const newNic = async () => (await vmOn(t, env, alice.api, [l3])).nics[0]!.uuid;

/** EIP or port-forwarding chains: the same shape */
function bindingChains(kind: 'eip' | 'port-forwarding-rule'): Record<string, ChainSpec> {
  const path = kind === 'eip' ? '/v1/eips' : '/v1/port-forwarding-rules';
  const body = (vip: string, nic?: string) => ({
    name: `rb-${kind}-${next()}`,
    vipUuid: vip,
    ...(kind === 'port-forwarding-rule' ? { protocol: 'tcp', vipPortStart: 1000 + next() } : {}),
    ...(nic ? { vmNicUuid: nic } : {}),
  });
  const attached = async (): Promise<Fixture> => {
    const vip = await newVip();
    const nic = await newNic();
    const uuid = (await succeed(alice.api, 'POST', path, body(vip, nic))).resourceUuid;
    return { uuid, vip, nic, other: await newNic() };
  };
  return {
    [`${kind}.create`]: {
      setup: async () => ({ uuid: '', vip: await newVip(), nic: await newNic() }),
      act: (fx) => alice.api.job('POST', path, body(fx.vip!, fx.nic)),
      atAdmission: ['create-record'],
      steps: ['create-record', 'apply-router-config'],
    },
    [`${kind}.attach`]: {
      setup: attached,
      act: (fx) => alice.api.job('POST', `${path}/${fx.uuid}/actions/attach`, { vmNicUuid: fx.other }),
      steps: ['set-nic', 'apply-router-config'],
    },
    [`${kind}.detach`]: {
      setup: attached,
      act: (fx) => alice.api.job('POST', `${path}/${fx.uuid}/actions/detach`, {}),
      steps: ['set-nic', 'apply-router-config'],
    },
    [`${kind}.update`]: {
      setup: attached,
      act: (fx) => alice.api.job('PATCH', `${path}/${fx.uuid}`, { name: `renamed-${next()}` }),
      steps: ['apply'],
    },
    [`${kind}.delete`]: {
      setup: attached,
      act: (fx) => alice.api.job('DELETE', `${path}/${fx.uuid}`),
      steps: ['set-nic', 'apply-router-config', 'delete-record'],
    },
  };
}

const offeringBody = () => ({
  name: `rb-offering-${next()}`,
  zoneUuid: env.zone,
  cpu: 1,
  memory: GiB,
  imageUuid: env.image,
  managementL3NetworkUuid: env.managementL3,
  publicL3NetworkUuid: env.publicL3,
});
const newOffering = async () =>
  (await succeed(t.admin, 'POST', '/v1/virtual-router-offerings', offeringBody())).resourceUuid as string;

/** a router of its own (its L3 and first VM), for the router chains */
async function newRouter(): Promise<Fixture> {
  const own = await vrL3(env, alice.api, `rrb-router-net-${next()}`);
  await vmOn(t, env, alice.api, [own.l3]);
  const r = await t.db.db
    .selectFrom('virtualRouters')
    .select('uuid')
    .where('l3NetworkUuid', '=', own.l3)
    .executeTakeFirstOrThrow();
  return { uuid: r.uuid, l3: own.l3 };
}

const routerRow = async (fx: Fixture) => {
  const r = await t.db.db
    .selectFrom('virtualRouters')
    .select(['state', 'vmUuid'])
    .where('uuid', '=', fx.uuid)
    .executeTakeFirst();
  const vm = r?.vmUuid
    ? await t.db.db.selectFrom('vms').select('state').where('uuid', '=', r.vmUuid).executeTakeFirst()
    : undefined;
  return { router: r, appliance: vm?.state ?? null };
};

const CHAINS: Record<string, ChainSpec> = {
  'virtual-router-offering.create': {
    setup: async () => ({ uuid: '' }),
    act: () => t.admin.job('POST', '/v1/virtual-router-offerings', offeringBody()),
    atAdmission: ['create-record'],
    steps: ['create-record'],
  },
  'virtual-router-offering.update': {
    setup: async () => ({ uuid: await newOffering() }),
    act: (fx) =>
      t.admin.job('PATCH', `/v1/virtual-router-offerings/${fx.uuid}`, { name: `rb-renamed-${next()}` }),
    steps: ['apply'],
  },
  'virtual-router-offering.disable': {
    setup: async () => ({ uuid: await newOffering() }),
    act: (fx) => t.admin.job('POST', `/v1/virtual-router-offerings/${fx.uuid}/actions/disable`, {}),
    steps: ['apply'],
  },
  'virtual-router-offering.enable': {
    setup: async () => {
      const uuid = await newOffering();
      await succeed(t.admin, 'POST', `/v1/virtual-router-offerings/${uuid}/actions/disable`, {});
      return { uuid };
    },
    act: (fx) => t.admin.job('POST', `/v1/virtual-router-offerings/${fx.uuid}/actions/enable`, {}),
    steps: ['apply'],
  },
  'virtual-router-offering.delete': {
    setup: async () => ({ uuid: await newOffering() }),
    act: (fx) => t.admin.job('DELETE', `/v1/virtual-router-offerings/${fx.uuid}`),
    steps: ['delete-record'],
  },
  'vip.create': {
    setup: async () => ({ uuid: '' }),
    act: () => alice.api.job('POST', '/v1/vips', { name: `rb-vip-${next()}`, l3NetworkUuid: env.publicL3 }),
    atAdmission: ['create-record'],
    steps: ['create-record'],
  },
  'vip.update': {
    setup: async () => ({ uuid: await newVip() }),
    act: (fx) => alice.api.job('PATCH', `/v1/vips/${fx.uuid}`, { name: `rb-vip-renamed-${next()}` }),
    steps: ['apply'],
  },
  'vip.delete': {
    setup: async () => ({ uuid: await newVip() }),
    act: (fx) => alice.api.job('DELETE', `/v1/vips/${fx.uuid}`),
    steps: ['delete-record'],
  },
  ...bindingChains('eip'),
  ...bindingChains('port-forwarding-rule'),
  'virtual-router.reconnect': {
    setup: newRouter,
    act: (fx) => alice.api.job('POST', `/v1/virtual-routers/${fx.uuid}/actions/reconnect`, {}),
    steps: ['check-status', 'apply-config'],
  },
  'virtual-router.reboot': {
    setup: newRouter,
    act: (fx) => alice.api.job('POST', `/v1/virtual-routers/${fx.uuid}/actions/reboot`, {}),
    steps: ['reboot-appliance', 'apply-config'],
  },
  'virtual-router.delete': {
    setup: newRouter,
    act: (fx) => alice.api.job('DELETE', `/v1/virtual-routers/${fx.uuid}`),
    snapshot: routerRow,
    // once the appliance is expunged the router cannot be put back: it is left in Error, for
    // the next VM of its L3 to replace
    after: (before, step) =>
      step === 'delete-record' ? { router: { state: 'Error', vmUuid: null }, appliance: null } : before,
    steps: ['mark-destroying', 'remove-appliance', 'delete-record'],
  },
};

const ROWS = Object.entries(CHAINS).flatMap(([kind, spec]) => spec.steps.map((step) => ({ kind, step })));
const codeFor = (step: string) => `FAULT_${step.toUpperCase().replace(/-/g, '_')}`;

describe('rollback table: a failure at every step of every VIP service and router chain leaves nothing behind', () => {
  test('the table has a row for every registered chain × step of these families, and no row for a chain that does not exist', () => {
    assertTableCovers(registeredSteps(t.node, FAMILIES), ROWS);
  });

  for (const { kind, step } of ROWS) {
    const spec = CHAINS[kind]!;
    const atAdmission = spec.atAdmission?.includes(step) ?? false;
    test(`${kind} / ${step}${atAdmission ? ' (done at admission: the fault is never reached)' : ''}`, async () => {
      const fx = await spec.setup();
      const snapshot = () => (spec.snapshot ? spec.snapshot(fx) : footprint());
      const before = await snapshot();
      const point = `step:${kind}/${step}`;
      await fault(t, { point, error: { code: codeFor(step) } });
      try {
        const job = await spec.act(fx);
        assert.equal(job.kind, kind);
        if (atAdmission) {
          assert.equal(job.state, 'Succeeded', JSON.stringify(job));
          return;
        }
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, codeFor(step));
        assert.equal(job.error.details.rollbackFailures, undefined, 'every rollback succeeded');
        assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
        const expected = spec.after ? spec.after(before, step) : before;
        assert.deepEqual(await snapshot(), expected);
      } finally {
        await clearFaults(t);
      }
    });
  }
});

describe('host command failures', () => {
  test('router.apply-config failing on attach: the EIP goes back to its NIC and the router keeps its configuration', async () => {
    const vip = await newVip();
    const nic = await newNic();
    const other = await newNic();
    const eip = (
      await succeed(alice.api, 'POST', '/v1/eips', { name: 'cmd-eip', vipUuid: vip, vmNicUuid: nic })
    ).resourceUuid;
    const before = await footprint();
    await fault(t, { point: 'command:router.apply-config', times: 1, error: { code: 'ROUTER_SAID_NO' } });
    try {
      const job = await alice.api.job('POST', `/v1/eips/${eip}/actions/attach`, { vmNicUuid: other });
      assert.equal(job.state, 'Failed', JSON.stringify(job));
      assert.equal(job.error.code, 'ROUTER_SAID_NO');
      assert.deepEqual(job.steps.done, []);
    } finally {
      await clearFaults(t);
    }
    assert.deepEqual(await footprint(), before);
    const router = await t.db.db
      .selectFrom('virtualRouters')
      .select('status')
      .where('l3NetworkUuid', '=', l3)
      .executeTakeFirstOrThrow();
    assert.equal(router.status, 'Connected', 'the rollback’s re-sync reached it again');
  });
});
