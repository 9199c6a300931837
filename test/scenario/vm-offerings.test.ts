/**
 * Instance offerings (admin-made, every account reads them) and affinity groups (a tenant's own):
 * create, update, enable/disable, delete, and who may do what.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registeredSteps } from '../support/chains.js';
import { type Api, startTestNode, type TestNode } from '../support/node.js';

const GiB = 1024 ** 3;
let t: TestNode;
let tenant: Api;

before(async () => {
  t = await startTestNode();
  const job = await t.admin.job('POST', '/v1/accounts', {
    name: 'offering-tenant',
    password: 'tenant-password',
  });
  assert.equal(job.state, 'Succeeded');
  tenant = await t.anon.login('offering-tenant', 'tenant-password');
});
after(() => t.stop());

describe('instance offerings', () => {
  test('the admin creates, updates, disables and deletes; every account reads', async () => {
    const created = await t.admin.job('POST', '/v1/instance-offerings', {
      name: 'small',
      cpu: 1,
      memory: GiB,
      allocatorStrategy: 'pack',
    });
    assert.equal(created.state, 'Succeeded', JSON.stringify(created));
    const uuid = created.resourceUuid;
    assert.deepEqual(
      {
        cpu: created.result.cpu,
        memory: created.result.memory,
        strategy: created.result.allocatorStrategy,
        state: created.result.state,
      },
      { cpu: 1, memory: GiB, strategy: 'pack', state: 'Enabled' },
    );
    const seen = await tenant.get(`/v1/instance-offerings?q=name=small`);
    assert.equal(seen.body.items.length, 1, 'a tenant sees the offering');
    assert.equal(
      (await tenant.post('/v1/instance-offerings', { name: 'mine', cpu: 1, memory: GiB })).status,
      403,
    );
    assert.equal((await tenant.post(`/v1/instance-offerings/${uuid}/actions/disable`, {})).status, 403);

    const dup = await t.admin.post('/v1/instance-offerings', { name: 'small', cpu: 2, memory: GiB });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'INSTANCE_OFFERING_NAME_TAKEN');
    const bad = await t.admin.post('/v1/instance-offerings', { name: 'zero', cpu: 0, memory: 1 });
    assert.equal(bad.status, 400);

    const renamed = await t.admin.job('PATCH', `/v1/instance-offerings/${uuid}`, {
      name: 'tiny',
      allocatorStrategy: null,
    });
    assert.equal(renamed.state, 'Succeeded');
    assert.equal(renamed.result.name, 'tiny');
    assert.equal(renamed.result.allocatorStrategy, null);
    const disabled = await t.admin.job('POST', `/v1/instance-offerings/${uuid}/actions/disable`, {});
    assert.equal(disabled.result.state, 'Disabled');
    const removed = await t.admin.job('DELETE', `/v1/instance-offerings/${uuid}`);
    assert.equal(removed.state, 'Succeeded');
    assert.equal((await t.admin.get(`/v1/instance-offerings/${uuid}`)).status, 404);
  });
});

describe('affinity groups', () => {
  test('a tenant owns its groups: others cannot see them; policy and enforcement are kept', async () => {
    const job = await tenant.job('POST', '/v1/affinity-groups', { name: 'web', policy: 'anti-affinity' });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal(job.result.enforcement, 'hard', 'hard by default');
    const soft = await tenant.job('POST', '/v1/affinity-groups', {
      name: 'db',
      policy: 'affinity',
      enforcement: 'soft',
    });
    assert.equal(soft.result.enforcement, 'soft');
    const list = await tenant.get('/v1/affinity-groups');
    assert.deepEqual(list.body.items.map((g: { name: string }) => g.name).sort(), ['db', 'web']);
    const other = await t.admin.job('POST', '/v1/accounts', {
      name: 'other-tenant',
      password: 'tenant-password',
    });
    const otherApi = await t.anon.login('other-tenant', 'tenant-password');
    assert.ok(other.resourceUuid);
    assert.equal((await otherApi.get(`/v1/affinity-groups/${job.resourceUuid}`)).status, 404);
    const bad = await tenant.post('/v1/affinity-groups', { name: 'x', policy: 'together' });
    assert.equal(bad.status, 400);
    const renamed = await tenant.job('PATCH', `/v1/affinity-groups/${job.resourceUuid}`, {
      description: 'front ends',
    });
    assert.equal(renamed.result.description, 'front ends');
    const removed = await tenant.job('DELETE', `/v1/affinity-groups/${soft.resourceUuid}`);
    assert.equal(removed.state, 'Succeeded');
  });
});

/** The rollback table of the offering and affinity-group chains (one step each, besides creates). */
describe('rollback table: offerings and affinity groups', () => {
  const row = (table: 'instanceOfferings' | 'affinityGroups', uuid: string) =>
    t.db.db.selectFrom(table).selectAll().where('uuid', '=', uuid).executeTakeFirst();
  let n = 0;
  const offering = async () =>
    (await t.admin.job('POST', '/v1/instance-offerings', { name: `rb-o-${++n}`, cpu: 1, memory: GiB }))
      .resourceUuid as string;
  const group = async () =>
    (await tenant.job('POST', '/v1/affinity-groups', { name: `rb-g-${++n}`, policy: 'affinity' }))
      .resourceUuid as string;
  type Row = {
    make: () => Promise<string>;
    table: 'instanceOfferings' | 'affinityGroups';
    api: () => typeof tenant;
    request: (u: string) => [string, string, unknown];
  };
  const o = (request: Row['request']): Row => ({
    make: offering,
    table: 'instanceOfferings',
    api: () => t.admin,
    request,
  });
  const g = (request: Row['request']): Row => ({
    make: group,
    table: 'affinityGroups',
    api: () => tenant,
    request,
  });
  const ROWS: Record<string, Row & { step: string }> = {
    'instance-offering.update': {
      ...o((u) => ['PATCH', `/v1/instance-offerings/${u}`, { name: 'changed' }]),
      step: 'apply',
    },
    'instance-offering.enable': {
      ...o((u) => ['POST', `/v1/instance-offerings/${u}/actions/enable`, {}]),
      step: 'apply',
    },
    'instance-offering.disable': {
      ...o((u) => ['POST', `/v1/instance-offerings/${u}/actions/disable`, {}]),
      step: 'apply',
    },
    'instance-offering.delete': {
      ...o((u) => ['DELETE', `/v1/instance-offerings/${u}`, undefined]),
      step: 'delete-record',
    },
    'affinity-group.update': {
      ...g((u) => ['PATCH', `/v1/affinity-groups/${u}`, { name: 'changed' }]),
      step: 'apply',
    },
    'affinity-group.delete': {
      ...g((u) => ['DELETE', `/v1/affinity-groups/${u}`, undefined]),
      step: 'delete-record',
    },
  };

  test('every chain of these families has a row (creates: their only step is done at admission)', () => {
    const registered = [...registeredSteps(t.node, ['instance-offering.', 'affinity-group.'])]
      .map(([kind, steps]) => `${kind}/${steps.join(',')}`)
      .sort();
    const expected = [
      ...Object.entries(ROWS).map(([kind, r]) => `${kind}/${r.step}`),
      'instance-offering.create/create-record',
      'affinity-group.create/create-record',
    ].sort();
    assert.deepEqual(registered, expected);
  });

  for (const [kind, r] of Object.entries(ROWS)) {
    test(`${kind} / ${r.step}: the failure leaves the record as it was`, async () => {
      const uuid = await r.make();
      const before = await row(r.table, uuid);
      const point = `step:${kind}/${r.step}`;
      assert.equal(
        (await t.admin.post('/v1/simulator/faults', { point, error: { code: 'FAULT' } })).status,
        201,
      );
      try {
        const [method, path, body] = r.request(uuid);
        const job = await r.api().job(method, path, body);
        assert.equal(job.state, 'Failed', JSON.stringify(job));
        assert.equal(job.error.code, 'FAULT');
        assert.deepEqual(job.steps.done, []);
      } finally {
        await t.admin.delete('/v1/simulator/faults');
      }
      assert.deepEqual(await row(r.table, uuid), before);
    });
  }

  test('a create’s only step is done at admission: its fault point is never reached', async () => {
    assert.equal(
      (await t.admin.post('/v1/simulator/faults', { point: 'step:instance-offering.create/create-record' }))
        .status,
      201,
    );
    try {
      const job = await t.admin.job('POST', '/v1/instance-offerings', {
        name: `rb-o-${++n}`,
        cpu: 1,
        memory: GiB,
      });
      assert.equal(job.state, 'Succeeded');
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });
});
