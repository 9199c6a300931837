/**
 * The rollback table (DESIGN.md §7): for every registered chain and every step of it, a failure
 * injected at that step (`step:<kind>/<step>`) fails the job with the injected error, empties the
 * journal's done steps, and leaves the database as it was before the operation. One row per
 * chain × step; a chain registered without rows here fails the coverage test, so adding a chain
 * means adding rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { VmService } from '../../src/resources/compute/vm/service.js';
import { assertTableCovers, registeredSteps } from '../support/chains.js';
import { buildInfra, startTestNode, type TestNode } from '../support/node.js';

let t: TestNode;
let infra: { zone: string; cluster: string; hosts: string[] };
let seq = 0;
const next = () => ++seq;

/** A fresh management IP per fixture host (10.200.x.y, apart from buildInfra's addresses). */
const freshIp = () => {
  const n = next();
  return `10.200.${Math.floor(n / 250)}.${(n % 250) + 1}`;
};

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const job = await t.admin.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

async function fault(spec: Record<string, unknown>): Promise<void> {
  const res = await t.admin.post('/v1/simulator/faults', spec);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

async function faults(): Promise<Array<{ point: string; hits: number }>> {
  return (await t.admin.get('/v1/simulator/faults')).body.items;
}

async function clearFaults(): Promise<void> {
  assert.equal((await t.admin.delete('/v1/simulator/faults')).status, 204);
}

// Fixtures: each row gets resources of its own, so one row's outcome never leaks into the next.

const newZone = async () =>
  (await ok('POST', '/v1/zones', { name: `rb-zone-${next()}` })).resourceUuid as string;
const newCluster = async () =>
  (
    await ok('POST', '/v1/clusters', {
      name: `rb-cluster-${next()}`,
      zoneUuid: infra.zone,
      hypervisorType: 'simulator',
    })
  ).resourceUuid as string;
const newHost = async (extra: Record<string, unknown> = {}) =>
  (
    await ok('POST', '/v1/hosts', {
      name: `rb-host-${next()}`,
      clusterUuid: infra.cluster,
      managementIp: freshIp(),
      ...extra,
    })
  ).resourceUuid as string;
const newAccount = async () =>
  (await ok('POST', '/v1/accounts', { name: `rb-account-${next()}`, password: 'account-password' }))
    .resourceUuid as string;
const newUser = async () =>
  (await ok('POST', '/v1/users', { name: `rb-user-${next()}`, password: 'user-password' }))
    .resourceUuid as string;
const tag = (path: string, key: string, value: string) => ok('POST', `${path}/tags`, { key, value });

// Snapshots: the rows an operation may touch, read straight from the node's database.

const row = (table: 'zones' | 'clusters' | 'hosts' | 'accounts' | 'users', uuid: string) =>
  t.db.db.selectFrom(table).selectAll().where('uuid', '=', uuid).executeTakeFirst();
const tagsOf = (uuid: string | undefined) =>
  uuid
    ? t.db.db
        .selectFrom('tags')
        .select(['key', 'value', 'resourceKind', 'accountUuid'])
        .where('resourceUuid', '=', uuid)
        .orderBy('key')
        .execute()
    : Promise.resolve([]);
const withTags = async (table: 'zones' | 'clusters' | 'hosts', uuid: string) => ({
  row: await row(table, uuid),
  tags: await tagsOf(uuid),
});
/** a host without updatedAt: a rolled-back status change moves the timestamp, not the state */
const hostState = async (uuid: string) => {
  const h = await row('hosts', uuid);
  assert.ok(h, `host ${uuid} is gone`);
  const { updatedAt: _, ...rest } = h;
  return rest;
};

interface Fixture {
  uuid: string;
  path: string;
  /** for creates: what identifies the would-be resource before it has a uuid */
  name?: string;
  ip?: string;
}

interface ChainSpec {
  /** resources the operation works on */
  setup(): Promise<Fixture>;
  /** the request, submitted with ?wait=true */
  act(fx: Fixture): Promise<any>;
  /** the rows that must be as before; `created` is the job's resource for a create */
  snapshot(fx: Fixture, created?: string): Promise<unknown>;
  /** what a rollback leaves when it is documented to differ from "as before" (default: as before) */
  after?(before: any, step: string): unknown;
  /** steps journaled as done when the job is admitted: a `step:` fault there is never checked */
  atAdmission?: string[];
}

/** A create whose record is inserted at admission (its only step, create-record, is already done). */
function recordOnlyCreate(
  path: string,
  body: () => Record<string, unknown>,
  table: 'zones' | 'clusters' | 'accounts' | 'users',
): ChainSpec {
  return {
    setup: async () => ({ uuid: '', path, name: body().name as string }),
    act: (fx) => t.admin.job('POST', path, { ...body(), name: fx.name }),
    snapshot: async (fx, created) => ({
      rows: await t.db.db.selectFrom(table).select('uuid').where('name', '=', fx.name!).execute(),
      created: created ? await row(table, created) : undefined,
    }),
    atAdmission: ['create-record'],
  };
}

/** update / enable / disable / maintain: a one-step `apply` flow on an existing resource */
function change(
  table: 'zones' | 'clusters' | 'hosts' | 'accounts' | 'users',
  make: () => Promise<string>,
  path: string,
  request: { method: string; suffix: string; body: unknown },
  prepare?: (fx: Fixture) => Promise<unknown>,
): ChainSpec {
  return {
    setup: async () => {
      const uuid = await make();
      const fx = { uuid, path: `${path}/${uuid}` };
      await prepare?.(fx);
      return fx;
    },
    act: (fx) => t.admin.job(request.method, `${fx.path}${request.suffix}`, request.body),
    snapshot: (fx) => row(table, fx.uuid),
  };
}

function remove(
  table: 'zones' | 'clusters' | 'hosts' | 'accounts' | 'users',
  make: () => Promise<string>,
  path: string,
): ChainSpec {
  const taggable = table === 'zones' || table === 'clusters' || table === 'hosts';
  return {
    setup: async () => {
      const uuid = await make();
      const fx = { uuid, path: `${path}/${uuid}` };
      if (taggable) await tag(fx.path, 'keep', 'me');
      return fx;
    },
    act: (fx) => t.admin.job('DELETE', fx.path),
    snapshot: async (fx) =>
      taggable
        ? withTags(table, fx.uuid)
        : {
            row: await row(table, fx.uuid),
            users: await t.db.db
              .selectFrom('users')
              .select(['uuid', 'name'])
              .where(table === 'accounts' ? 'accountUuid' : 'uuid', '=', fx.uuid)
              .orderBy('uuid')
              .execute(),
          },
  };
}

const CHAINS: Record<string, ChainSpec> = {
  'zone.create': recordOnlyCreate('/v1/zones', () => ({ name: `rb-new-zone-${next()}` }), 'zones'),
  'zone.update': change('zones', newZone, '/v1/zones', {
    method: 'PATCH',
    suffix: '',
    body: { name: 'renamed-zone', description: 'changed' },
  }),
  'zone.enable': change(
    'zones',
    newZone,
    '/v1/zones',
    { method: 'POST', suffix: '/actions/enable', body: {} },
    (fx) => ok('POST', `${fx.path}/actions/disable`, {}),
  ),
  'zone.disable': change('zones', newZone, '/v1/zones', {
    method: 'POST',
    suffix: '/actions/disable',
    body: {},
  }),
  'zone.delete': remove('zones', newZone, '/v1/zones'),

  'cluster.create': recordOnlyCreate(
    '/v1/clusters',
    () => ({ name: `rb-new-cluster-${next()}`, zoneUuid: infra.zone, hypervisorType: 'simulator' }),
    'clusters',
  ),
  'cluster.update': change('clusters', newCluster, '/v1/clusters', {
    method: 'PATCH',
    suffix: '',
    body: { name: 'renamed-cluster', description: 'changed' },
  }),
  'cluster.enable': change(
    'clusters',
    newCluster,
    '/v1/clusters',
    { method: 'POST', suffix: '/actions/enable', body: {} },
    (fx) => ok('POST', `${fx.path}/actions/disable`, {}),
  ),
  'cluster.disable': change('clusters', newCluster, '/v1/clusters', {
    method: 'POST',
    suffix: '/actions/disable',
    body: {},
  }),
  'cluster.delete': remove('clusters', newCluster, '/v1/clusters'),

  'host.create': {
    setup: async () => ({ uuid: '', path: '/v1/hosts', name: `rb-new-host-${next()}`, ip: freshIp() }),
    act: (fx) =>
      t.admin.job('POST', '/v1/hosts', { name: fx.name, clusterUuid: infra.cluster, managementIp: fx.ip }),
    snapshot: async (fx, created) => ({
      hosts: await t.db.db.selectFrom('hosts').select('uuid').where('managementIp', '=', fx.ip!).execute(),
      byUuid: created ? await row('hosts', created) : undefined,
      tags: await tagsOf(created),
    }),
    atAdmission: ['create-record'],
  },
  'host.reconnect': {
    setup: async () => {
      const uuid = await newHost({ simulatorCpu: 8, simulatorMemory: 8 * 1024 ** 3 });
      const host = await row('hosts', uuid);
      // the machine grew since it was added: a reconnect that got as far as read-capacity would see it
      await t.db.db
        .updateTable('simulatorHosts')
        .set({ cpu: 64, memory: 64 * 1024 ** 3 })
        .where('address', '=', host!.managementIp)
        .execute();
      return { uuid, path: `/v1/hosts/${uuid}` };
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/actions/reconnect`, {}),
    snapshot: (fx) => hostState(fx.uuid),
    // documented (host/flows.ts): a failed reconnect leaves the host Disconnected, capacity as it was;
    // a failure before mark-connecting changed anything leaves it untouched
    after: (before, step) => (step === 'mark-connecting' ? before : { ...before, status: 'Disconnected' }),
  },
  'host.update': change('hosts', () => newHost(), '/v1/hosts', {
    method: 'PATCH',
    suffix: '',
    body: { name: 'renamed-host', description: 'changed' },
  }),
  'host.enable': change(
    'hosts',
    () => newHost(),
    '/v1/hosts',
    { method: 'POST', suffix: '/actions/enable', body: {} },
    (fx) => ok('POST', `${fx.path}/actions/disable`, {}),
  ),
  'host.disable': change('hosts', () => newHost(), '/v1/hosts', {
    method: 'POST',
    suffix: '/actions/disable',
    body: {},
  }),
  'host.maintain': {
    ...change('hosts', () => newHost(), '/v1/hosts', {
      method: 'POST',
      suffix: '/actions/maintain',
      body: {},
    }),
    // a state change stamps updatedAt: compare the rest
    snapshot: async (fx) => {
      const { updatedAt: _, ...rest } = (await row('hosts', fx.uuid)) as Record<string, unknown>;
      return rest;
    },
    // the host never stays half-way: once PreMaintenance, a failure leaves it in Maintenance
    after: (before, step) =>
      step === 'enter-pre-maintenance' ? before : { ...before, state: 'Maintenance' },
  },
  'host.delete': remove('hosts', () => newHost(), '/v1/hosts'),
  // submitted by the reconciler, not the API: the host goes silent and three passes disconnect it
  'host.ha-recover': {
    setup: async () => {
      const cluster = await newCluster();
      await ok('PATCH', `/v1/clusters/${cluster}`, { hostHa: true });
      const uuid = await newHost({ clusterUuid: cluster });
      return { uuid, path: `/v1/hosts/${uuid}` };
    },
    act: async (fx) => {
      const ip = ((await row('hosts', fx.uuid)) as { managementIp: string }).managementIp;
      await fault({ point: 'command:vm.list', host: ip, error: { code: 'HOST_UNREACHABLE' } });
      const vms = t.node.kindServices.find((k) => k.contract.kind === 'vms') as VmService;
      for (let i = 0; i < 3; i++) await vms.reconciler.reconcileAll();
      const job = await t.db.db
        .selectFrom('jobs')
        .select('uuid')
        .where('kind', '=', 'host.ha-recover')
        .where('resourceUuid', '=', fx.uuid)
        .executeTakeFirstOrThrow();
      return (await t.admin.get(`/v1/jobs/${job.uuid}?wait=true`)).body;
    },
    snapshot: async (fx) => {
      const { updatedAt: _, fencedAt, ...rest } = (await row('hosts', fx.uuid)) as Record<string, unknown>;
      return { ...rest, fenced: fencedAt !== null };
    },
    // the silence is the reconciler's (Disconnected either way); a fence cannot be undone: a
    // failure after it leaves the host fenced, and the next reconcile pass recovers it again
    after: (before, step) => ({ ...before, status: 'Disconnected', fenced: step !== 'fence' }),
  },

  'account.create': recordOnlyCreate(
    '/v1/accounts',
    () => ({ name: `rb-new-account-${next()}`, password: 'account-password' }),
    'accounts',
  ),
  'account.update': change('accounts', newAccount, '/v1/accounts', {
    method: 'PATCH',
    suffix: '',
    body: { description: 'changed' },
  }),
  'account.delete': remove('accounts', newAccount, '/v1/accounts'),

  'user.create': recordOnlyCreate(
    '/v1/users',
    () => ({ name: `rb-new-user-${next()}`, password: 'user-password' }),
    'users',
  ),
  'user.update': change('users', newUser, '/v1/users', {
    method: 'PATCH',
    suffix: '',
    body: { description: 'changed', password: 'a-new-password' },
  }),
  'user.delete': remove('users', newUser, '/v1/users'),

  'tag.set': {
    setup: async () => {
      const uuid = await newZone();
      const fx = { uuid, path: `/v1/zones/${uuid}` };
      await tag(fx.path, 'env', 'dev');
      return fx;
    },
    act: (fx) => t.admin.job('POST', `${fx.path}/tags`, { key: 'env', value: 'prod' }),
    snapshot: (fx) => tagsOf(fx.uuid),
  },
  'tag.remove': {
    setup: async () => {
      const uuid = await newZone();
      const fx = { uuid, path: `/v1/zones/${uuid}` };
      await tag(fx.path, 'env', 'dev');
      await tag(fx.path, 'team', 'infra');
      return fx;
    },
    act: (fx) => t.admin.job('DELETE', `${fx.path}/tags/env`),
    snapshot: (fx) => tagsOf(fx.uuid),
  },
};

/**
 * The foundation families this table covers; every other family (storage, volumes, compute) keeps
 * its own rollback table with its own coverage check.
 */
const FAMILIES = ['zone.', 'cluster.', 'host.', 'account.', 'user.', 'tag.'];

/** Steps of each chain, written out: the rows of the table (checked against the registered ones). */
const STEPS: Record<string, string[]> = {
  'host.create': ['create-record', 'provision', 'connect', 'read-capacity', 'mark-connected', 'sync-peers'],
  'host.reconnect': [
    'mark-connecting',
    'connect',
    'read-capacity',
    'sync-network',
    'mark-connected',
    'sync-peers',
  ],
  'host.maintain': ['enter-pre-maintenance', 'evacuate', 'mark-maintenance'],
  'host.ha-recover': ['fence', 'list-vms', 'release-vms', 'restart-vms'],
  'tag.set': ['set-tag'],
  'tag.remove': ['remove-tag'],
};
const stepsOf = (kind: string) =>
  STEPS[kind] ??
  (kind.endsWith('.create') ? ['create-record'] : kind.endsWith('.delete') ? ['delete-record'] : ['apply']);
const ROWS = Object.keys(CHAINS).flatMap((kind) => stepsOf(kind).map((step) => ({ kind, step })));

// one node for the whole file: every row makes its own resources
before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'rb');
});
after(() => t.stop());

const codeFor = (step: string) => `FAULT_${step.toUpperCase().replace(/-/g, '_')}`;

describe('rollback table: a failure at every step of every chain leaves nothing behind', () => {
  test('the table has a row for every registered foundation chain × step, and no row for a chain that does not exist', () => {
    assertTableCovers(registeredSteps(t.node, FAMILIES), ROWS);
  });

  for (const { kind, step } of ROWS) {
    const spec = CHAINS[kind]!;
    const atAdmission = spec.atAdmission?.includes(step) ?? false;
    test(`${kind} / ${step}${atAdmission ? ' (done at admission: the fault is never reached)' : ''}`, async () => {
      const fx = await spec.setup();
      const before = await spec.snapshot(fx);
      const point = `step:${kind}/${step}`;
      await fault({ point, error: { code: codeFor(step) } });
      try {
        const job = await spec.act(fx);
        assert.equal(job.kind, kind);
        if (atAdmission) {
          // the record was written with the job: a create of a record-only chain cannot fail after
          // admission, and its create-record fault point is never checked
          assert.equal(job.state, 'Succeeded', JSON.stringify(job));
          assert.deepEqual(job.steps.done, stepsOf(kind));
          assert.equal((await faults()).find((f) => f.point === point)?.hits, 0);
          return;
        }
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, codeFor(step));
        assert.equal(job.error.details.point, point);
        assert.equal(job.error.details.rollbackFailures, undefined, 'every rollback succeeded');
        assert.deepEqual(job.steps.done, [], 'every done step was rolled back');
        assert.equal(job.steps.phase, 'rollback');
        assert.equal(job.steps.current, null);
        const expected = spec.after ? spec.after(before, step) : before;
        assert.deepEqual(await spec.snapshot(fx, job.resourceUuid), expected);
      } finally {
        await clearFaults();
      }
    });
  }
});

describe('host chains: command failures, failing rollbacks and overlapping jobs', () => {
  for (const command of ['host.connect', 'host.capacity']) {
    test(`a failing ${command} fails the job with the host's error and removes the host`, async () => {
      const ip = freshIp();
      const other = freshIp();
      await fault({
        point: `command:${command}`,
        host: ip,
        error: { code: 'HOST_SAID_NO', message: `${command}: link down` },
      });
      try {
        const job = await t.admin.job('POST', '/v1/hosts', {
          name: `cmd-${next()}`,
          clusterUuid: infra.cluster,
          managementIp: ip,
        });
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, 'HOST_SAID_NO');
        assert.equal(job.error.message, `${command}: link down`);
        assert.deepEqual(job.error.details, { point: `command:${command}`, host: ip });
        assert.deepEqual(job.steps.done, []);
        assert.equal(await row('hosts', job.resourceUuid), undefined);
        assert.deepEqual(await tagsOf(job.resourceUuid), []);
        // the rollback is on the record: the host's deletion, by this job
        const events = await t.admin.get(`/v1/events?q=jobUuid=${job.uuid}&q=type=host.deleted`);
        assert.equal(events.body.items.length, 1, JSON.stringify(events.body));
        assert.deepEqual(events.body.items[0].data, { reason: 'rolled back' });
        // the fault is for that host only: another host is added fine
        const fine = await t.admin.job('POST', '/v1/hosts', {
          name: `cmd-${next()}`,
          clusterUuid: infra.cluster,
          managementIp: other,
        });
        assert.equal(fine.state, 'Succeeded', JSON.stringify(fine));
        assert.equal(fine.result.status, 'Connected');
      } finally {
        await clearFaults();
      }
    });
  }

  test('the default injected command fault names the command and the host', async () => {
    const ip = freshIp();
    await fault({ point: 'command:host.connect', host: ip });
    try {
      const job = await t.admin.job('POST', '/v1/hosts', {
        name: `cmd-${next()}`,
        clusterUuid: infra.cluster,
        managementIp: ip,
      });
      assert.equal(job.state, 'Failed');
      assert.equal(job.error.code, 'INJECTED_FAULT');
      assert.match(job.error.message, /command:host\.connect/);
      assert.ok(job.error.message.includes(ip), job.error.message);
    } finally {
      await clearFaults();
    }
  });

  test('a failing rollback is reported in error.details.rollbackFailures; the other rollbacks still happen', async () => {
    const ip = freshIp();
    await fault({ point: 'step:host.create/mark-connected', error: { code: 'FAULT_MARK_CONNECTED' } });
    await fault({ point: 'rollback:host.create/read-capacity', error: { code: 'ROLLBACK_BROKEN' } });
    try {
      const job = await t.admin.job('POST', '/v1/hosts', {
        name: `cmd-${next()}`,
        clusterUuid: infra.cluster,
        managementIp: ip,
      });
      assert.equal(job.state, 'Failed');
      assert.equal(job.error.code, 'FAULT_MARK_CONNECTED', 'the job fails with the first failure');
      const failures = job.error.details.rollbackFailures;
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0].step, 'read-capacity');
      assert.equal(failures[0].code, 'ROLLBACK_BROKEN');
      // create-record, rolled back after read-capacity, still removed the host
      assert.equal(await row('hosts', job.resourceUuid), undefined);
      assert.deepEqual(job.steps.done, []);
    } finally {
      await clearFaults();
    }
  });

  test('host.reconnect with a failing rollback: that step is reported and left undone, the earlier one is undone', async () => {
    const uuid = await newHost({ simulatorCpu: 8 });
    const host = await row('hosts', uuid);
    await t.db.db
      .updateTable('simulatorHosts')
      .set({ cpu: 64 })
      .where('address', '=', host!.managementIp)
      .execute();
    await fault({ point: 'step:host.reconnect/mark-connected', error: { code: 'FAULT_MARK_CONNECTED' } });
    await fault({ point: 'rollback:host.reconnect/read-capacity' });
    try {
      const job = await t.admin.job('POST', `/v1/hosts/${uuid}/actions/reconnect`, {});
      assert.equal(job.state, 'Failed');
      assert.deepEqual(
        job.error.details.rollbackFailures.map((f: { step: string; code: string }) => [f.step, f.code]),
        [['read-capacity', 'INJECTED_FAULT']],
      );
      const after = await row('hosts', uuid);
      assert.equal(after!.cpuTotal, 64, 'read-capacity was not undone (its rollback failed)');
      assert.equal(after!.status, 'Disconnected', 'mark-connecting, earlier in the chain, was undone');
    } finally {
      await clearFaults();
    }
  });

  test('a reconnect refused with HOST_BUSY rolls back nothing of the reconnect that holds the host', async () => {
    const uuid = await newHost();
    const host = await row('hosts', uuid);
    // the connect answers slowly, so the two reconnects overlap (the host queue runs 10 at once)
    await fault({ point: 'command:host.connect', host: host!.managementIp, delayMs: 1000 });
    try {
      const submitted = await Promise.all([
        t.admin.post(`/v1/hosts/${uuid}/actions/reconnect`, {}),
        t.admin.post(`/v1/hosts/${uuid}/actions/reconnect`, {}),
      ]);
      const jobs = await Promise.all(
        submitted.map(async (s) => (await t.admin.get(`/v1/jobs/${s.body.uuid}?wait=true`)).body),
      );
      const refused = jobs.filter((j) => j.state === 'Failed');
      assert.equal(refused.length, 1, JSON.stringify(jobs.map((j) => [j.state, j.error?.code])));
      assert.equal(refused[0].error.code, 'HOST_BUSY');
      // the refused job changed no status: it did not flip the other job's Connecting to Disconnected
      const events = await t.admin.get(`/v1/events?q=jobUuid=${refused[0].uuid}&q=type=host.status.changed`);
      assert.deepEqual(events.body.items, []);
      assert.equal((await row('hosts', uuid))!.status, 'Connected');
    } finally {
      await clearFaults();
    }
  });

  test('a tag set on a host while its create fails does not outlive the host', async () => {
    const ip = freshIp();
    // the connect waits, then fails: the host record exists meanwhile and can be tagged
    await fault({ point: 'command:host.connect', host: ip, delayMs: 500, error: {} });
    try {
      const submitted = await t.admin.post('/v1/hosts', {
        name: `cmd-${next()}`,
        clusterUuid: infra.cluster,
        managementIp: ip,
      });
      assert.equal(submitted.status, 202);
      const uuid = submitted.body.resourceUuid as string;
      const tagged = await t.admin.job('POST', `/v1/hosts/${uuid}/tags`, { key: 'env', value: 'prod' });
      const finished = (await t.admin.get(`/v1/jobs/${submitted.body.uuid}?wait=true`)).body;
      assert.equal(finished.state, 'Failed');
      // whichever order the two jobs ran in, no tag may remain on a host that does not exist
      assert.equal(await row('hosts', uuid), undefined);
      assert.deepEqual(await tagsOf(uuid), [], `tag job ended ${tagged.state}`);
    } finally {
      await clearFaults();
    }
  });

  test('a tag job admitted before its resource went away does not tag the vanished resource', async () => {
    const uuid = await newHost();
    // the tag job is admitted now but waits before its step; the delete, in the same host queue
    // (parallelism 10), runs meanwhile
    await fault({ point: 'step:tag.set/set-tag', delayMs: 500 });
    try {
      const tagging = await t.admin.post(`/v1/hosts/${uuid}/tags`, { key: 'env', value: 'prod' });
      assert.equal(tagging.status, 202);
      await ok('DELETE', `/v1/hosts/${uuid}`);
      const tagged = (await t.admin.get(`/v1/jobs/${tagging.body.uuid}?wait=true`)).body;
      assert.equal(await row('hosts', uuid), undefined);
      // whichever order the two jobs ran in, the host's tags went with it
      assert.deepEqual(await tagsOf(uuid), [], `tag job ended ${tagged.state}`);
      if (tagged.state === 'Failed') assert.equal(tagged.error.code, 'HOST_NOT_FOUND');
    } finally {
      await clearFaults();
    }
  });
});
