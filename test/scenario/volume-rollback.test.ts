/**
 * The rollback table of the volume, snapshot and quota chains (DESIGN.md §7): a failure injected
 * at every step (`step:<kind>/<step>`) fails the job with the injected error, rolls back every
 * done step, and leaves the database as it was: no volume, snapshot or image row left, storage
 * capacity, backup-storage capacity and quota usage back, the VM released at its device list.
 * Then every host command the chains send fails once (`command:<name>`) with the same outcome.
 * A chain of these families registered without a row here fails the coverage test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { registeredSteps } from '../support/chains.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';
import {
  GiB,
  type Infra,
  newVm,
  next,
  ok,
  rootVolume,
  sharedStorage,
  tenant,
  usage,
  used,
} from './volume-fixtures.js';

const FAMILIES = ['volume.', 'volume-snapshot.', 'quota.'];

let t: TestNode;
let infra: Infra;
let nfs: string;
let bs: string;
let a: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'vrb');
  nfs = await sharedStorage(t, infra, 10_000 * GiB);
  a = await tenant(t);
  await ok(t.admin, 'PATCH', `/v1/quotas/${a.uuid}`, { 'volume.data.num': 10_000, 'image.num': 10_000 });
  bs = newId();
  await t.db.db
    .insertInto('backupStorages')
    .values({
      uuid: bs,
      name: 'rb-bs',
      description: null,
      accountUuid: a.uuid,
      type: 'simulator',
      url: 'sim://rb',
      capacityTotal: 10_000 * GiB,
    })
    .execute();
  await t.db.db
    .insertInto('backupStorageZones')
    .values({ backupStorageUuid: bs, zoneUuid: infra.zone })
    .execute();
  // the simulated storage itself, which images made from volumes are copied onto
  await t.db.db
    .insertInto('simulatorBackupStorages')
    .values({ url: 'sim://rb', capacity: 10_000 * GiB })
    .execute();
});
after(() => t.stop());

interface Fx {
  volume?: string;
  vm?: string;
  snapshot?: string;
  name?: string;
}

const strip = <T extends Record<string, unknown>>(rows: T[]) => rows.map(({ updatedAt: _, ...rest }) => rest);

/** Everything a volume-family chain may touch, for one fixture. */
async function world(fx: Fx) {
  const db = t.db.db;
  const volumes = fx.name
    ? await db.selectFrom('volumes').selectAll().where('name', '=', fx.name).execute()
    : fx.volume
      ? await db.selectFrom('volumes').selectAll().where('uuid', '=', fx.volume).execute()
      : [];
  return {
    volumes: strip(volumes),
    snapshots: fx.volume
      ? strip(
          await db
            .selectFrom('volumeSnapshots')
            .selectAll()
            .where('volumeUuid', '=', fx.volume)
            .orderBy('uuid')
            .execute(),
        )
      : [],
    vm: fx.vm
      ? await db.selectFrom('vms').select(['state', 'task']).where('uuid', '=', fx.vm).executeTakeFirst()
      : null,
    devices: fx.vm
      ? await db
          .selectFrom('volumes')
          .select(['uuid', 'deviceId'])
          .where('vmUuid', '=', fx.vm)
          .orderBy('uuid')
          .execute()
      : [],
    images: await db
      .selectFrom('images')
      .select(['uuid', 'state'])
      .where('accountUuid', '=', a.uuid)
      .orderBy('uuid')
      .execute(),
    capacity: await used(t, nfs),
    backupStorage: (
      await db
        .selectFrom('backupStorages')
        .select('capacityUsed')
        .where('uuid', '=', bs)
        .executeTakeFirstOrThrow()
    ).capacityUsed,
    // what is really on the (simulated) backup storage: a rolled-back image copy leaves nothing
    backupStorageImages: await db
      .selectFrom('simulatorBackupStorageImages')
      .select('imageUuid')
      .where('url', '=', 'sim://rb')
      .orderBy('imageUuid')
      .execute(),
    quota: await usage(t, a.uuid),
    limits: await db
      .selectFrom('quotas')
      .select(['name', 'limitValue'])
      .where('accountUuid', '=', a.uuid)
      .orderBy('name')
      .execute(),
  };
}

// fixtures
const dataVolume = async (vm?: string) =>
  (
    await ok(a.api, 'POST', '/v1/volumes', {
      name: `rb-${next()}`,
      size: GiB,
      primaryStorageUuid: nfs,
      ...(vm ? { vmUuid: vm } : {}),
    })
  ).resourceUuid as string;
const running = () => newVm(t, { account: a.uuid, host: infra.hosts[0]! });
const stopped = () => newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Stopped' });
const snapshot = async (volume: string) =>
  (await ok(a.api, 'POST', '/v1/volume-snapshots', { name: `rb-s-${next()}`, volumeUuid: volume }))
    .resourceUuid as string;

interface ChainSpec {
  setup(): Promise<Fx>;
  act(fx: Fx): Promise<any>;
  /** steps done in the admitting transaction: their `step:` fault is never reached */
  atAdmission?: string[];
}

const CHAINS: Record<string, ChainSpec> = {
  'volume.create': {
    setup: async () => ({ vm: await running(), name: `rb-new-${next()}` }),
    act: (fx) =>
      a.api.job('POST', '/v1/volumes', {
        name: fx.name,
        size: 2 * GiB,
        primaryStorageUuid: nfs,
        vmUuid: fx.vm,
      }),
    atAdmission: ['create-record', 'claim-vm'],
  },
  'volume.update': {
    setup: async () => ({ volume: await dataVolume() }),
    act: (fx) => a.api.job('PATCH', `/v1/volumes/${fx.volume}`, { name: 'renamed', deleteWithVm: true }),
  },
  'volume.attach': {
    setup: async () => ({ vm: await running(), volume: await dataVolume() }),
    act: (fx) => a.api.job('POST', `/v1/volumes/${fx.volume}/actions/attach`, { vmUuid: fx.vm }),
    atAdmission: ['claim-vm'],
  },
  'volume.detach': {
    setup: async () => {
      const vm = await running();
      return { vm, volume: await dataVolume(vm) };
    },
    act: (fx) => a.api.job('POST', `/v1/volumes/${fx.volume}/actions/detach`, {}),
    atAdmission: ['claim-vm'],
  },
  'volume.delete': {
    setup: async () => {
      const vm = await running();
      return { vm, volume: await dataVolume(vm) };
    },
    act: (fx) => a.api.job('DELETE', `/v1/volumes/${fx.volume}`),
    atAdmission: ['claim-vm'],
  },
  'volume.recover': {
    setup: async () => {
      const volume = await dataVolume();
      await ok(a.api, 'DELETE', `/v1/volumes/${volume}`);
      return { volume };
    },
    act: (fx) => a.api.job('POST', `/v1/volumes/${fx.volume}/actions/recover`, {}),
  },
  'volume.expunge': {
    setup: async () => {
      const volume = await dataVolume();
      await snapshot(volume);
      await ok(a.api, 'DELETE', `/v1/volumes/${volume}`);
      return { volume };
    },
    act: (fx) => a.api.job('POST', `/v1/volumes/${fx.volume}/actions/expunge`, {}),
  },
  'volume.resize': {
    setup: async () => ({ volume: await dataVolume() }),
    act: (fx) => a.api.job('POST', `/v1/volumes/${fx.volume}/actions/resize`, { size: 5 * GiB }),
  },
  'volume.create-image': {
    setup: async () => {
      const vm = await stopped();
      return { vm, volume: await rootVolume(t, { vm, account: a.uuid, ps: nfs }) };
    },
    act: (fx) =>
      a.api.job('POST', `/v1/volumes/${fx.volume}/actions/create-image`, { name: `rb-img-${next()}` }),
    atAdmission: ['record-image', 'claim-vm'],
  },
  'volume-snapshot.create': {
    setup: async () => {
      const volume = await dataVolume();
      await snapshot(volume);
      return { volume };
    },
    act: (fx) => a.api.job('POST', '/v1/volume-snapshots', { name: `rb-s-${next()}`, volumeUuid: fx.volume }),
    atAdmission: ['create-record'],
  },
  'volume-snapshot.update': {
    setup: async () => {
      const volume = await dataVolume();
      return { volume, snapshot: await snapshot(volume) };
    },
    act: (fx) => a.api.job('PATCH', `/v1/volume-snapshots/${fx.snapshot}`, { name: 'renamed' }),
  },
  'volume-snapshot.delete': {
    setup: async () => {
      const volume = await dataVolume();
      const first = await snapshot(volume);
      await snapshot(volume);
      return { volume, snapshot: first };
    },
    act: (fx) => a.api.job('DELETE', `/v1/volume-snapshots/${fx.snapshot}`),
  },
  'volume-snapshot.revert': {
    setup: async () => {
      const vm = await stopped();
      const volume = await dataVolume(vm);
      const first = await snapshot(volume);
      await snapshot(volume);
      return { vm, volume, snapshot: first };
    },
    act: (fx) => a.api.job('POST', `/v1/volume-snapshots/${fx.snapshot}/actions/revert`, {}),
    atAdmission: ['claim-vm'],
  },
  'volume-snapshot.create-image': {
    setup: async () => {
      const volume = await dataVolume();
      return { volume, snapshot: await snapshot(volume) };
    },
    act: (fx) =>
      a.api.job('POST', `/v1/volume-snapshots/${fx.snapshot}/actions/create-image`, {
        name: `rb-img-${next()}`,
      }),
    atAdmission: ['record-image'],
  },
  'quota.update': {
    setup: async () => ({}),
    act: () => t.admin.job('PATCH', `/v1/quotas/${a.uuid}`, { 'vm.num': 7, 'snapshot.num': 9 }),
  },
};

const registered = () => registeredSteps(t.node, FAMILIES);

async function fault(spec: Record<string, unknown>): Promise<void> {
  const res = await t.admin.post('/v1/simulator/faults', spec);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}
const hits = async (point: string) =>
  ((await t.admin.get('/v1/simulator/faults')).body.items as Array<{ point: string; hits: number }>).find(
    (f) => f.point === point,
  )?.hits;
const clearFaults = async () => assert.equal((await t.admin.delete('/v1/simulator/faults')).status, 204);
const codeFor = (step: string) => `FAULT_${step.toUpperCase().replace(/-/g, '_')}`;

async function failsCleanly(spec: ChainSpec, point: string, code: string): Promise<void> {
  const fx = await spec.setup();
  const before = await world(fx);
  await fault({ point, error: { code } });
  try {
    const job = await spec.act(fx);
    assert.equal(job.state, 'Failed', JSON.stringify(job));
    assert.equal(job.error.code, code);
    assert.equal(job.error.details.rollbackFailures, undefined, JSON.stringify(job.error));
    assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
    assert.equal(job.steps.phase, 'rollback');
    assert.deepEqual(await world(fx), before);
  } finally {
    await clearFaults();
  }
}

describe('volume rollback table: a failure at every step of every chain leaves nothing behind', () => {
  test('every registered volume, snapshot and quota chain has a row; no row without a chain', () => {
    const kinds = [...registered().keys()].sort();
    assert.deepEqual(kinds, Object.keys(CHAINS).sort());
  });

  test('every step, every chain', async (c) => {
    // the steps come from the registered chains (the truth), known once the node runs: subtests
    for (const [kind, steps] of registered()) {
      const spec = CHAINS[kind]!;
      for (const step of steps) {
        const point = `step:${kind}/${step}`;
        if (spec.atAdmission?.includes(step)) {
          const fx = await spec.setup();
          await fault({ point, error: { code: codeFor(step) } });
          try {
            const job = await spec.act(fx);
            assert.equal(job.state, 'Succeeded', `${point}: ${JSON.stringify(job)}`);
            assert.equal(await hits(point), 0, `${point} is done at admission`);
          } finally {
            await clearFaults();
          }
          continue;
        }
        await c.test(point, () => failsCleanly(spec, point, codeFor(step)));
      }
    }
  });
});

describe('host commands failing: the chain rolls back to where it started', () => {
  const CASES: Array<[string, string]> = [
    ['volume.create', 'volume.create'],
    ['volume.create', 'vm.attach-volume'],
    ['volume.attach', 'vm.attach-volume'],
    ['volume.detach', 'vm.detach-volume'],
    ['volume.delete', 'vm.detach-volume'],
    ['volume.resize', 'volume.resize'],
    ['volume.expunge', 'snapshot.delete'],
    ['volume.expunge', 'volume.delete'],
    ['volume-snapshot.create', 'snapshot.create'],
    ['volume-snapshot.delete', 'snapshot.delete'],
    ['volume-snapshot.revert', 'snapshot.revert'],
    ['volume.create-image', 'image.upload'],
    ['volume-snapshot.create-image', 'image.upload'],
  ];
  for (const [kind, command] of CASES) {
    test(`${kind}: ${command} fails`, () =>
      failsCleanly(CHAINS[kind]!, `command:${command}`, 'HOST_SAID_NO'));
  }
});

describe('images made from volumes and snapshots are copied onto the backup storage', () => {
  test('root volume and snapshot: the simulated backup storage holds each image once Ready', async () => {
    for (const kind of ['volume.create-image', 'volume-snapshot.create-image']) {
      const spec = CHAINS[kind]!;
      const fx = await spec.setup();
      const job = await spec.act(fx);
      assert.equal(job.state, 'Succeeded', JSON.stringify(job.error));
      const held = await t.db.db
        .selectFrom('simulatorBackupStorageImages')
        .select(['imageUuid', 'size'])
        .where('url', '=', 'sim://rb')
        .where('imageUuid', '=', job.result.uuid)
        .executeTakeFirst();
      assert.equal(held?.size, job.result.size, `${kind}: the copy is on the backup storage`);
    }
  });
});
