/**
 * The rollback table of the VXLAN pool, L2 network, L3 network and IP range chains (DESIGN.md
 * §7): a failure injected at every step of every chain fails the job with the injected error and
 * leaves the pools, networks, attachments and ranges as they were. A row per chain × step; a
 * chain registered without rows fails the coverage test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';
import { clearFaults, fault } from './vm-env.js';

let t: TestNode;
let infra: { zone: string; cluster: string };
let seq = 0;
const next = () => ++seq;

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 0, 'nrb');
});
after(() => t.stop());

const FAMILIES = ['vxlan-pool.', 'l2-network.', 'l3-network.', 'ip-range.'];

async function made(path: string, body: Record<string, unknown>): Promise<string> {
  const job = await t.admin.job('POST', path, body);
  assert.equal(job.state, 'Succeeded', `${path}: ${JSON.stringify(job)}`);
  return job.resourceUuid;
}

async function footprint() {
  const db = t.db.db;
  const [pools, l2s, attached, l3s, ranges] = await Promise.all([
    db.selectFrom('vxlanPools').select(['uuid', 'name', 'description']).orderBy('uuid').execute(),
    db.selectFrom('l2Networks').select(['uuid', 'name', 'vni']).orderBy('uuid').execute(),
    db
      .selectFrom('l2NetworkClusters')
      .select(['l2NetworkUuid', 'clusterUuid'])
      .orderBy('l2NetworkUuid')
      .execute(),
    db.selectFrom('l3Networks').select(['uuid', 'name', 'state', 'dns']).orderBy('uuid').execute(),
    db.selectFrom('ipRanges').select(['uuid', 'name', 'startIp']).orderBy('uuid').execute(),
  ]);
  return { pools, l2s, attached, l3s, ranges };
}

const newPool = () => {
  const n = next();
  return made('/v1/vxlan-pools', {
    name: `rb-pool-${n}`,
    zoneUuid: infra.zone,
    vniStart: n * 100,
    vniEnd: n * 100 + 9,
  });
};
const newL2 = () =>
  made('/v1/l2-networks', {
    name: `rb-l2-${next()}`,
    zoneUuid: infra.zone,
    type: 'no-vlan',
    physicalInterface: `rb${next()}`,
  });
const newL3 = async () =>
  made('/v1/l3-networks', { name: `rb-l3-${next()}`, l2NetworkUuid: await newL2(), category: 'private' });
const newRange = async () =>
  made('/v1/ip-ranges', { name: `rb-range-${next()}`, l3NetworkUuid: await newL3(), cidr: '10.50.0.0/24' });

interface ChainSpec {
  setup(): Promise<string>;
  act(uuid: string): Promise<any>;
  steps: string[];
  atAdmission?: string[];
}

const crud = (
  kind: string,
  path: string,
  make: () => Promise<string>,
  create: () => Promise<Record<string, unknown>>,
) => ({
  [`${kind}.create`]: {
    setup: async () => '',
    act: async () => t.admin.job('POST', path, await create()),
    steps: ['create-record'],
    atAdmission: ['create-record'],
  },
  [`${kind}.update`]: {
    setup: make,
    act: (uuid: string) => t.admin.job('PATCH', `${path}/${uuid}`, { description: 'changed' }),
    steps: ['apply'],
  },
  [`${kind}.delete`]: {
    setup: make,
    act: (uuid: string) => t.admin.job('DELETE', `${path}/${uuid}`),
    steps: ['delete-record'],
  },
});

const CHAINS: Record<string, ChainSpec> = {
  ...crud('vxlan-pool', '/v1/vxlan-pools', newPool, async () => {
    const n = next();
    return { name: `rb-pool-${n}`, zoneUuid: infra.zone, vniStart: n * 100, vniEnd: n * 100 + 9 };
  }),
  ...crud('l2-network', '/v1/l2-networks', newL2, async () => ({
    name: `rb-l2-${next()}`,
    zoneUuid: infra.zone,
    type: 'vlan',
    physicalInterface: 'eth0',
    vlan: next(),
  })),
  ...crud('l3-network', '/v1/l3-networks', newL3, async () => ({
    name: `rb-l3-${next()}`,
    l2NetworkUuid: await newL2(),
    category: 'private',
  })),
  ...crud('ip-range', '/v1/ip-ranges', newRange, async () => ({
    name: `rb-range-${next()}`,
    l3NetworkUuid: await newL3(),
    cidr: '10.51.0.0/24',
  })),
  'l2-network.attach-cluster': {
    setup: newL2,
    act: (uuid) =>
      t.admin.job('POST', `/v1/l2-networks/${uuid}/actions/attach-cluster`, { clusterUuid: infra.cluster }),
    steps: ['attach'],
  },
  'l2-network.detach-cluster': {
    setup: async () => {
      const uuid = await newL2();
      await t.admin.job('POST', `/v1/l2-networks/${uuid}/actions/attach-cluster`, {
        clusterUuid: infra.cluster,
      });
      return uuid;
    },
    act: (uuid) =>
      t.admin.job('POST', `/v1/l2-networks/${uuid}/actions/detach-cluster`, { clusterUuid: infra.cluster }),
    steps: ['detach'],
  },
  'l3-network.disable': {
    setup: newL3,
    act: (uuid) => t.admin.job('POST', `/v1/l3-networks/${uuid}/actions/disable`, {}),
    steps: ['apply'],
  },
  'l3-network.enable': {
    setup: async () => {
      const uuid = await newL3();
      await t.admin.job('POST', `/v1/l3-networks/${uuid}/actions/disable`, {});
      return uuid;
    },
    act: (uuid) => t.admin.job('POST', `/v1/l3-networks/${uuid}/actions/enable`, {}),
    steps: ['apply'],
  },
};

const ROWS = Object.entries(CHAINS).flatMap(([kind, spec]) => spec.steps.map((step) => ({ kind, step })));
const codeFor = (step: string) => `FAULT_${step.toUpperCase().replace(/-/g, '_')}`;

describe('rollback table: a failure at every step of every L2/L3/IP range chain leaves nothing behind', () => {
  test('the table has a row for every registered chain × step of these families, and no row for a chain that does not exist', () => {
    assertTableCovers(registeredSteps(t.node, FAMILIES), ROWS);
  });

  for (const { kind, step } of ROWS) {
    const spec = CHAINS[kind]!;
    const atAdmission = spec.atAdmission?.includes(step) ?? false;
    test(`${kind} / ${step}${atAdmission ? ' (done at admission: the fault is never reached)' : ''}`, async () => {
      const uuid = await spec.setup();
      const before = await footprint();
      await fault(t, { point: `step:${kind}/${step}`, error: { code: codeFor(step) } });
      try {
        const job = await spec.act(uuid);
        assert.equal(job.kind, kind);
        if (atAdmission) {
          assert.equal(job.state, 'Succeeded', JSON.stringify(job));
          return;
        }
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, codeFor(step));
        assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
        assert.deepEqual(await footprint(), before);
      } finally {
        await clearFaults(t);
      }
    });
  }
});
