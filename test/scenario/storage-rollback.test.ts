/**
 * The rollback table of the storage chains (DESIGN.md §7): a failure injected at every step of
 * every disk-offering, backup-storage, image and primary-storage chain fails the job with the
 * injected error, rolls back every done step and leaves the rows as they were — for an image
 * add: no row, backup-storage capacity, quota and the storage's own copy all back. A chain of
 * these families registered without rows here fails the coverage test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/kernel/ids.js';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { type Api, buildInfra, startTestNode, type TestNode } from '../support/node.js';

const MiB = 1024 ** 2;
const FAMILIES = ['disk-offering.', 'backup-storage.', 'image.', 'primary-storage.'];

let t: TestNode;
let tenant: Api;
let tenantUuid: string;
let infra: { zone: string; cluster: string; hosts: string[] };
let bs: { uuid: string; url: string };
let seq = 0;
const next = () => ++seq;

async function ok(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}
const admin = (method: string, path: string, body?: unknown) => ok(t.admin, method, path, body);

// fixtures: every row makes its own resources
const newOffering = async () =>
  (await admin('POST', '/v1/disk-offerings', { name: `rb-do-${next()}`, size: MiB })).resourceUuid;
const newBs = async () => {
  const url = `sim://rb-bs-${next()}`;
  const uuid = (
    await admin('POST', '/v1/backup-storages', { name: `rb-bs-${next()}`, type: 'simulator', url })
  ).resourceUuid;
  return { uuid, url };
};
const newImage = async (api: Api = tenant) =>
  (
    await ok(api, 'POST', '/v1/images', {
      name: `rb-img-${next()}`,
      url: `http://images.example/rb-${next()}.qcow2?size=${7 * MiB}`,
      format: 'qcow2',
      backupStorageUuid: bs.uuid,
    })
  ).resourceUuid as string;
const newPs = async (type = 'local') =>
  (
    await admin('POST', '/v1/primary-storages', {
      name: `rb-ps-${next()}`,
      zoneUuid: infra.zone,
      type,
      url: type === 'nfs' ? 'nfs://10.0.0.5/x' : '/x',
      capacity: 10 * MiB,
    })
  ).resourceUuid as string;

// snapshots, straight from the database
const rowOf = (table: 'diskOfferings' | 'backupStorages' | 'images' | 'primaryStorages', uuid: string) =>
  t.db.db.selectFrom(table).selectAll().where('uuid', '=', uuid).executeTakeFirst();
const withoutUpdatedAt = (row: Record<string, unknown> | undefined) => {
  if (!row) return row;
  const { updatedAt: _, ...rest } = row;
  return rest;
};
const quotaUsed = async () =>
  (
    await t.db.db
      .selectFrom('quotas')
      .select('used')
      .where('accountUuid', '=', tenantUuid)
      .where('name', '=', 'image.num')
      .executeTakeFirst()
  )?.used ?? 0;
const storageState = async () => ({
  bs: withoutUpdatedAt(await rowOf('backupStorages', bs.uuid)),
  copies: (
    await t.db.db
      .selectFrom('simulatorBackupStorageImages')
      .select('imageUuid')
      .where('url', '=', bs.url)
      .execute()
  )
    .map((r) => r.imageUuid)
    .sort(),
  quota: await quotaUsed(),
});
const psState = async (uuid: string) => ({
  ps: withoutUpdatedAt(await rowOf('primaryStorages', uuid)),
  clusters: await t.db.db
    .selectFrom('primaryStorageClusters')
    .selectAll()
    .where('primaryStorageUuid', '=', uuid)
    .execute(),
  shares: await t.db.db
    .selectFrom('primaryStorageHosts')
    .selectAll()
    .where('primaryStorageUuid', '=', uuid)
    .orderBy('hostUuid')
    .execute(),
  cache: await t.db.db
    .selectFrom('imageCache')
    .select(['uuid', 'state'])
    .where('primaryStorageUuid', '=', uuid)
    .execute(),
});

interface Fixture {
  uuid: string;
  path: string;
  name?: string;
}

interface ChainSpec {
  setup(): Promise<Fixture>;
  act(fx: Fixture): Promise<any>;
  snapshot(fx: Fixture, created?: string): Promise<unknown>;
  /** what a rollback leaves when it is documented to differ from "as before" */
  after?(before: any, step: string): unknown;
  /** steps done at admission: their fault point is never reached */
  atAdmission?: string[];
  steps: string[];
}

function onRow(
  table: 'diskOfferings' | 'backupStorages' | 'images' | 'primaryStorages',
  make: () => Promise<string>,
  path: string,
  request: { method: string; suffix?: string; body?: unknown },
  steps = ['apply'],
  prepare?: (fx: Fixture) => Promise<unknown>,
): ChainSpec {
  return {
    setup: async () => {
      const uuid = await make();
      const fx = { uuid, path: `${path}/${uuid}` };
      await prepare?.(fx);
      return fx;
    },
    act: (fx) => t.admin.job(request.method, `${fx.path}${request.suffix ?? ''}`, request.body),
    snapshot: async (fx) => withoutUpdatedAt(await rowOf(table, fx.uuid)),
    steps,
  };
}

const CHAINS: Record<string, ChainSpec> = {
  'disk-offering.create': {
    setup: async () => ({ uuid: '', path: '/v1/disk-offerings', name: `rb-new-do-${next()}` }),
    act: (fx) => t.admin.job('POST', fx.path, { name: fx.name, size: MiB }),
    snapshot: async (fx) =>
      t.db.db.selectFrom('diskOfferings').select('uuid').where('name', '=', fx.name!).execute(),
    atAdmission: ['create-record'],
    steps: ['create-record'],
  },
  'disk-offering.update': onRow('diskOfferings', newOffering, '/v1/disk-offerings', {
    method: 'PATCH',
    body: { name: `rb-renamed` },
  }),
  'disk-offering.disable': onRow('diskOfferings', newOffering, '/v1/disk-offerings', {
    method: 'POST',
    suffix: '/actions/disable',
    body: {},
  }),
  'disk-offering.enable': onRow(
    'diskOfferings',
    newOffering,
    '/v1/disk-offerings',
    { method: 'POST', suffix: '/actions/enable', body: {} },
    ['apply'],
    (fx) => admin('POST', `${fx.path}/actions/disable`, {}),
  ),
  'disk-offering.delete': onRow('diskOfferings', newOffering, '/v1/disk-offerings', { method: 'DELETE' }, [
    'delete-record',
  ]),

  'backup-storage.create': {
    setup: async () => ({ uuid: '', path: '/v1/backup-storages', name: `rb-new-bs-${next()}` }),
    act: (fx) => t.admin.job('POST', fx.path, { name: fx.name, type: 'simulator', url: `sim://${fx.name}` }),
    snapshot: async (fx, created) => ({
      rows: await t.db.db.selectFrom('backupStorages').select('uuid').where('name', '=', fx.name!).execute(),
      byUuid: created ? await rowOf('backupStorages', created) : undefined,
    }),
    atAdmission: ['create-record'],
    steps: ['create-record', 'provision', 'connect', 'mark-connected'],
  },
  'backup-storage.reconnect': {
    setup: async () => {
      const made = await newBs();
      // the storage grew: a reconnect that got as far as connect would see it
      await t.db.db
        .updateTable('simulatorBackupStorages')
        .set({ capacity: 2 * 1024 ** 4 })
        .where('url', '=', made.url)
        .execute();
      return { uuid: made.uuid, path: `/v1/backup-storages/${made.uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/reconnect`, {}),
    snapshot: async (fx) => withoutUpdatedAt(await rowOf('backupStorages', fx.uuid)),
    // documented: a failed reconnect leaves it Disconnected, capacity as it was
    after: (before, step) => (step === 'mark-connecting' ? before : { ...before, status: 'Disconnected' }),
    steps: ['mark-connecting', 'connect', 'mark-connected'],
  },
  'backup-storage.attach-zone': {
    setup: async () => {
      const { uuid } = await newBs();
      return { uuid, path: `/v1/backup-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/attach-zone`, { zoneUuid: infra.zone }),
    snapshot: (fx) =>
      t.db.db.selectFrom('backupStorageZones').selectAll().where('backupStorageUuid', '=', fx.uuid).execute(),
    steps: ['attach'],
  },
  'backup-storage.detach-zone': {
    setup: async () => {
      const { uuid } = await newBs();
      await admin('POST', `/v1/backup-storages/${uuid}/actions/attach-zone`, { zoneUuid: infra.zone });
      return { uuid, path: `/v1/backup-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/detach-zone`, { zoneUuid: infra.zone }),
    snapshot: (fx) =>
      t.db.db.selectFrom('backupStorageZones').selectAll().where('backupStorageUuid', '=', fx.uuid).execute(),
    steps: ['detach'],
  },
  'backup-storage.update': onRow('backupStorages', async () => (await newBs()).uuid, '/v1/backup-storages', {
    method: 'PATCH',
    body: { description: 'changed' },
  }),
  'backup-storage.disable': onRow('backupStorages', async () => (await newBs()).uuid, '/v1/backup-storages', {
    method: 'POST',
    suffix: '/actions/disable',
    body: {},
  }),
  'backup-storage.enable': onRow(
    'backupStorages',
    async () => (await newBs()).uuid,
    '/v1/backup-storages',
    { method: 'POST', suffix: '/actions/enable', body: {} },
    ['apply'],
    (fx) => admin('POST', `${fx.path}/actions/disable`, {}),
  ),
  'backup-storage.delete': onRow(
    'backupStorages',
    async () => (await newBs()).uuid,
    '/v1/backup-storages',
    { method: 'DELETE' },
    ['delete-record'],
  ),

  'image.create': {
    setup: async () => ({ uuid: '', path: '/v1/images', name: `rb-new-img-${next()}` }),
    act: (fx) =>
      tenant.job('POST', fx.path, {
        name: fx.name,
        url: `http://images.example/${fx.name}.qcow2?size=${9 * MiB}`,
        format: 'qcow2',
        backupStorageUuid: bs.uuid,
      }),
    snapshot: async (fx) => ({
      rows: await t.db.db.selectFrom('images').select('uuid').where('name', '=', fx.name!).execute(),
      ...(await storageState()),
    }),
    atAdmission: ['create-record', 'reserve-quota'],
    steps: ['create-record', 'reserve-quota', 'download', 'reserve-capacity', 'mark-ready'],
  },
  'image.update': {
    ...onRow('images', () => newImage(), '/v1/images', {
      method: 'PATCH',
      body: { name: 'rb-renamed', platform: 'Other' },
    }),
  },
  'image.delete': onRow('images', () => newImage(), '/v1/images', { method: 'DELETE' }, ['mark-deleted']),
  'image.recover': onRow(
    'images',
    () => newImage(),
    '/v1/images',
    { method: 'POST', suffix: '/actions/recover', body: {} },
    ['mark-ready'],
    (fx) => admin('DELETE', fx.path),
  ),
  'image.expunge': {
    setup: async () => {
      const uuid = await newImage();
      await admin('DELETE', `/v1/images/${uuid}`);
      return { uuid, path: `/v1/images/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/expunge`, {}),
    snapshot: async (fx) => ({
      image: withoutUpdatedAt(await rowOf('images', fx.uuid)),
      ...(await storageState()),
    }),
    // documented (image/flows.ts): the copy deleted from the storage cannot come back; the record
    // stays Deleted, its capacity and quota held, and expunging again finishes the job
    after: (before, step) =>
      step === 'remove-record'
        ? { ...before, copies: before.copies.filter((c: string) => c !== before.image.uuid) }
        : before,
    steps: ['delete-from-backup-storage', 'remove-record'],
  },

  'primary-storage.create': {
    setup: async () => ({ uuid: '', path: '/v1/primary-storages', name: `rb-new-ps-${next()}` }),
    act: (fx) =>
      t.admin.job('POST', fx.path, {
        name: fx.name,
        zoneUuid: infra.zone,
        type: 'nfs',
        url: 'nfs://10.0.0.5/x',
        capacity: MiB,
      }),
    snapshot: async (fx) =>
      t.db.db.selectFrom('primaryStorages').select('uuid').where('name', '=', fx.name!).execute(),
    atAdmission: ['create-record'],
    steps: ['create-record'],
  },
  'primary-storage.update': {
    setup: async () => {
      const uuid = await newPs();
      await admin('POST', `/v1/primary-storages/${uuid}/actions/attach-cluster`, {
        clusterUuid: infra.cluster,
      });
      return { uuid, path: `/v1/primary-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('PATCH', fx.path, { capacity: 20 * MiB, overProvisioningRatio: 2 }),
    snapshot: (fx) => psState(fx.uuid),
    steps: ['apply'],
  },
  ...Object.fromEntries(
    (['enable', 'disable', 'maintain'] as const).map((action) => [
      `primary-storage.${action}`,
      onRow(
        'primaryStorages',
        () => newPs('nfs'),
        '/v1/primary-storages',
        { method: 'POST', suffix: `/actions/${action}`, body: {} },
        ['apply'],
      ),
    ]),
  ),
  'primary-storage.attach-cluster': {
    setup: async () => {
      const uuid = await newPs();
      return { uuid, path: `/v1/primary-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/attach-cluster`, { clusterUuid: infra.cluster }),
    snapshot: (fx) => psState(fx.uuid),
    steps: ['attach'],
  },
  'primary-storage.detach-cluster': {
    setup: async () => {
      const uuid = await newPs();
      await admin('POST', `/v1/primary-storages/${uuid}/actions/attach-cluster`, {
        clusterUuid: infra.cluster,
      });
      return { uuid, path: `/v1/primary-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/detach-cluster`, { clusterUuid: infra.cluster }),
    snapshot: (fx) => psState(fx.uuid),
    steps: ['detach'],
  },
  'primary-storage.clean-image-cache': {
    setup: async () => {
      const uuid = await newPs('nfs');
      await t.db.db
        .insertInto('imageCache')
        .values({
          uuid: newId(),
          primaryStorageUuid: uuid,
          hostUuid: null,
          imageUuid: newId(),
          size: MiB,
          state: 'Ready',
          path: '/c',
        })
        .execute();
      await t.db.db
        .updateTable('primaryStorages')
        .set({ capacityUsed: MiB })
        .where('uuid', '=', uuid)
        .execute();
      return { uuid, path: `/v1/primary-storages/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/clean-image-cache`, {}),
    snapshot: (fx) => psState(fx.uuid),
    steps: ['clean'],
  },
  'primary-storage.delete': onRow(
    'primaryStorages',
    () => newPs('nfs'),
    '/v1/primary-storages',
    { method: 'DELETE' },
    ['delete-record'],
  ),
};

const ROWS = Object.entries(CHAINS).flatMap(([kind, spec]) => spec.steps.map((step) => ({ kind, step })));
const codeFor = (step: string) => `FAULT_${step.toUpperCase().replace(/-/g, '_')}`;

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 2, 'rbs');
  tenantUuid = (await admin('POST', '/v1/accounts', { name: 'rb-tenant', password: 'tenant-password' }))
    .resourceUuid;
  tenant = await t.anon.login('rb-tenant', 'tenant-password');
  bs = await newBs();
  await admin('POST', `/v1/backup-storages/${bs.uuid}/actions/attach-zone`, { zoneUuid: infra.zone });
});
after(() => t.stop());

describe('storage rollback table: a failure at every step of every chain leaves nothing behind', () => {
  test('the table has a row for every registered storage chain × step, and none for a step that does not exist', () => {
    assertTableCovers(registeredSteps(t.node, FAMILIES), ROWS);
  });

  for (const { kind, step } of ROWS) {
    const spec = CHAINS[kind]!;
    const atAdmission = spec.atAdmission?.includes(step) ?? false;
    test(`${kind} / ${step}${atAdmission ? ' (done at admission: the fault is never reached)' : ''}`, async () => {
      const fx = await spec.setup();
      const before = await spec.snapshot(fx);
      const point = `step:${kind}/${step}`;
      await t.admin.post('/v1/simulator/faults', { point, error: { code: codeFor(step) } });
      try {
        const job = await spec.act(fx);
        assert.equal(job.kind, kind);
        if (atAdmission) {
          assert.equal(job.state, 'Succeeded', JSON.stringify(job));
          assert.equal(
            (await t.admin.get('/v1/simulator/faults')).body.items.find((f: any) => f.point === point)?.hits,
            0,
          );
          return;
        }
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, codeFor(step));
        assert.equal(job.error.details.rollbackFailures, undefined, 'every rollback succeeded');
        assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
        assert.equal(job.steps.phase, 'rollback');
        const expected = spec.after ? spec.after(before, step) : before;
        assert.deepEqual(await spec.snapshot(fx, job.resourceUuid), expected);
      } finally {
        await t.admin.delete('/v1/simulator/faults');
      }
    });
  }
});

describe('command failures', () => {
  test('a failing bs.download-image fails the add with the storage error; row, capacity, quota back', async () => {
    const before = await storageState();
    await t.admin.post('/v1/simulator/faults', {
      point: 'command:bs.download-image',
      host: bs.url,
      error: { code: 'HTTP_404', message: 'not found' },
    });
    try {
      const job = await tenant.job('POST', '/v1/images', {
        name: 'missing',
        url: 'http://images.example/missing.raw',
        format: 'raw',
        backupStorageUuid: bs.uuid,
      });
      assert.equal(job.state, 'Failed');
      assert.equal(job.error.code, 'HTTP_404');
      assert.equal(await rowOf('images', job.resourceUuid), undefined);
      assert.deepEqual(await storageState(), before);
      const events = await t.admin.get(`/v1/events?q=resourceUuid=${job.resourceUuid}&sort=id`);
      assert.deepEqual(
        events.body.items.map((e: any) => e.type),
        ['image.created', 'image.deleted'],
      );
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });

  test('a failing bs.connect removes the new backup storage', async () => {
    const name = `rb-cmd-bs-${next()}`;
    await t.admin.post('/v1/simulator/faults', {
      point: 'command:bs.connect',
      host: `sim://${name}`,
      error: { code: 'NO_ROUTE' },
    });
    try {
      const job = await t.admin.job('POST', '/v1/backup-storages', {
        name,
        type: 'simulator',
        url: `sim://${name}`,
      });
      assert.equal(job.state, 'Failed');
      assert.equal(job.error.code, 'NO_ROUTE');
      assert.equal(await rowOf('backupStorages', job.resourceUuid), undefined);
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });

  test('an expunge that failed after deleting the copy finishes when run again', async () => {
    const uuid = await newImage();
    await admin('DELETE', `/v1/images/${uuid}`);
    const before = await storageState();
    await t.admin.post('/v1/simulator/faults', {
      point: 'step:image.expunge/remove-record',
      times: 1,
      error: {},
    });
    const failed = await t.admin.job('POST', `/v1/images/${uuid}/actions/expunge`, {});
    assert.equal(failed.state, 'Failed');
    assert.equal((await rowOf('images', uuid))?.state, 'Deleted');
    await admin('POST', `/v1/images/${uuid}/actions/expunge`, {});
    assert.equal(await rowOf('images', uuid), undefined);
    const now = await storageState();
    assert.equal(now.quota, before.quota - 1);
    assert.equal(now.bs!.capacityUsed, (before.bs!.capacityUsed as number) - 7 * MiB);
  });
});
