/**
 * Zones, clusters and hosts through the API: refusals answered at once (and changing nothing),
 * validation that names every bad field, state transitions, updates, and the job protocol
 * (202 + Location, ?wait=true, cancel).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildInfra, fieldsOf, startTestNode, type TestNode } from '../support/node.js';

let t: TestNode;
let infra: { zone: string; cluster: string; hosts: string[] };
let seq = 0;
const next = () => ++seq;

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const job = await t.admin.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

/** the fields an Invalid error names (a field with two problems, e.g. name too short and badly formed, once) */

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'res');
});
after(() => t.stop());

describe('refusals are answered at once and change nothing', () => {
  test('a zone with clusters cannot be deleted: 409 ZONE_HAS_CLUSTERS, no job, the zone stays', async () => {
    const jobsBefore = (await t.admin.get('/v1/jobs?count=true&limit=0')).body.total;
    const res = await t.admin.delete(`/v1/zones/${infra.zone}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'ZONE_HAS_CLUSTERS');
    assert.equal(res.body.error.reason, 'Conflict');
    assert.deepEqual(res.body.error.details, { clusters: 'present' });
    assert.equal(
      (await t.admin.get('/v1/jobs?count=true&limit=0')).body.total,
      jobsBefore,
      'no job was submitted',
    );
    assert.equal((await t.admin.get(`/v1/zones/${infra.zone}`)).status, 200);
  });

  test('a cluster with hosts cannot be deleted: 409 CLUSTER_HAS_HOSTS, the cluster stays', async () => {
    const res = await t.admin.delete(`/v1/clusters/${infra.cluster}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'CLUSTER_HAS_HOSTS');
    assert.equal((await t.admin.get(`/v1/clusters/${infra.cluster}`)).status, 200);
  });

  test('deleting the children first lets the parents go', async () => {
    const zone = (await ok('POST', '/v1/zones', { name: `res-tree-${next()}` })).resourceUuid;
    const cluster = (
      await ok('POST', '/v1/clusters', { name: 'c', zoneUuid: zone, hypervisorType: 'simulator' })
    ).resourceUuid;
    const host = (
      await ok('POST', '/v1/hosts', { name: 'h', clusterUuid: cluster, managementIp: `10.99.0.${next()}` })
    ).resourceUuid;
    assert.equal((await t.admin.delete(`/v1/clusters/${cluster}`)).body.error.code, 'CLUSTER_HAS_HOSTS');
    await ok('DELETE', `/v1/hosts/${host}`);
    assert.equal((await t.admin.delete(`/v1/zones/${zone}`)).body.error.code, 'ZONE_HAS_CLUSTERS');
    await ok('DELETE', `/v1/clusters/${cluster}`);
    await ok('DELETE', `/v1/zones/${zone}`);
    for (const path of [`/v1/hosts/${host}`, `/v1/clusters/${cluster}`, `/v1/zones/${zone}`])
      assert.equal((await t.admin.get(path)).status, 404, path);
  });

  test('a duplicate zone name is 409 ZONE_NAME_TAKEN and creates nothing', async () => {
    const name = `res-dup-${next()}`;
    await ok('POST', '/v1/zones', { name });
    const res = await t.admin.post('/v1/zones', { name });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'ZONE_NAME_TAKEN');
    assert.equal(res.body.error.reason, 'AlreadyExists');
    const listed = await t.admin.get(`/v1/zones?q=name=${name}&count=true`);
    assert.equal(listed.body.total, 1);
  });

  test('renaming a zone to a taken name fails its job with ZONE_NAME_TAKEN and keeps the old name', async () => {
    const taken = `res-taken-${next()}`;
    await ok('POST', '/v1/zones', { name: taken });
    const name = `res-mine-${next()}`;
    const zone = (await ok('POST', '/v1/zones', { name })).resourceUuid;
    const job = await t.admin.job('PATCH', `/v1/zones/${zone}`, { name: taken });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'ZONE_NAME_TAKEN');
    assert.equal((await t.admin.get(`/v1/zones/${zone}`)).body.name, name);
  });

  test('a cluster name is unique within its zone only', async () => {
    const name = `res-cl-${next()}`;
    await ok('POST', '/v1/clusters', { name, zoneUuid: infra.zone, hypervisorType: 'simulator' });
    const dup = await t.admin.post('/v1/clusters', {
      name,
      zoneUuid: infra.zone,
      hypervisorType: 'simulator',
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'CLUSTER_NAME_TAKEN');
    const otherZone = (await ok('POST', '/v1/zones', { name: `res-z-${next()}` })).resourceUuid;
    await ok('POST', '/v1/clusters', { name, zoneUuid: otherZone, hypervisorType: 'simulator' });
  });

  test('a second host at the same management IP is 409 HOST_ADDRESS_IN_USE', async () => {
    const existing = (await t.admin.get(`/v1/hosts/${infra.hosts[0]}`)).body;
    const res = await t.admin.post('/v1/hosts', {
      name: 'clash',
      clusterUuid: infra.cluster,
      managementIp: existing.managementIp,
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'HOST_ADDRESS_IN_USE');
    const listed = await t.admin.get(`/v1/hosts?q=managementIp=${existing.managementIp}&count=true`);
    assert.equal(listed.body.total, 1);
  });

  test('an unknown cluster is 400 CLUSTER_NOT_FOUND naming clusterUuid', async () => {
    const missing = '01900000-0000-7000-8000-000000000000';
    const res = await t.admin.post('/v1/hosts', {
      name: 'h',
      clusterUuid: missing,
      managementIp: '10.98.0.1',
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'CLUSTER_NOT_FOUND');
    assert.deepEqual(fieldsOf(res.body), ['clusterUuid']);
    assert.ok(res.body.error.message.includes(missing));
  });

  test('an unknown zone for a cluster is 400 ZONE_NOT_FOUND naming zoneUuid', async () => {
    const res = await t.admin.post('/v1/clusters', {
      name: 'c',
      zoneUuid: '01900000-0000-7000-8000-000000000000',
      hypervisorType: 'simulator',
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'ZONE_NOT_FOUND');
    assert.deepEqual(fieldsOf(res.body), ['zoneUuid']);
  });

  test('a host that is still Connecting cannot be deleted: 409 HOST_BUSY', async () => {
    const ip = `10.97.0.${next()}`;
    // the connect answers slowly, so the host stays Connecting for a while
    await t.admin.post('/v1/simulator/faults', { point: 'command:host.connect', host: ip, delayMs: 1000 });
    try {
      const submitted = await t.admin.post('/v1/hosts', {
        name: `slow-${next()}`,
        clusterUuid: infra.cluster,
        managementIp: ip,
      });
      const res = await t.admin.delete(`/v1/hosts/${submitted.body.resourceUuid}`);
      const job = (await t.admin.get(`/v1/jobs/${submitted.body.uuid}?wait=true`)).body;
      assert.equal(job.state, 'Succeeded');
      // the delete came while the connect was still waiting (1 s): refused, the host survived
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'HOST_BUSY');
      assert.deepEqual(res.body.error.details, { status: 'Connecting' });
      assert.equal((await t.admin.get(`/v1/hosts/${submitted.body.resourceUuid}`)).body.status, 'Connected');
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });
});

describe('validation reports every bad field at once', () => {
  test('host create: every bad and unknown field is named', async () => {
    const res = await t.admin.post('/v1/hosts', {
      name: '',
      clusterUuid: 'not-a-uuid',
      managementIp: '999.1.1.1',
      simulatorCpu: 0,
      colour: 'blue',
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'INVALID_REQUEST');
    assert.equal(res.body.error.reason, 'Invalid');
    assert.deepEqual(fieldsOf(res.body), ['clusterUuid', 'colour', 'managementIp', 'name', 'simulatorCpu']);
  });

  test('missing required fields are each reported', async () => {
    const res = await t.admin.post('/v1/clusters', {});
    assert.equal(res.status, 400);
    assert.deepEqual(fieldsOf(res.body), ['hypervisorType', 'name', 'zoneUuid']);
  });

  test('an update with an unknown field changes nothing', async () => {
    const before = (await t.admin.get(`/v1/zones/${infra.zone}`)).body;
    const res = await t.admin.patch(`/v1/zones/${infra.zone}`, { description: 'x', state: 'Disabled' });
    assert.equal(res.status, 400);
    assert.deepEqual(fieldsOf(res.body), ['state']);
    assert.deepEqual((await t.admin.get(`/v1/zones/${infra.zone}`)).body, before);
  });

  test('an unsupported hypervisor type is refused with the field named', async () => {
    // simulator and kvm are the types with a driver (contract HYPERVISOR_TYPES)
    const res = await t.admin.post('/v1/clusters', {
      name: 'xen',
      zoneUuid: infra.zone,
      hypervisorType: 'xen',
    });
    assert.equal(res.status, 400);
    assert.deepEqual(fieldsOf(res.body), ['hypervisorType']);
  });
});

describe('state transitions and updates', () => {
  test('host: disable → maintain → enable, each recorded as a state change', async () => {
    const host = infra.hosts[0]!;
    for (const [action, state] of [
      ['disable', 'Disabled'],
      ['maintain', 'Maintenance'],
      ['enable', 'Enabled'],
    ] as const) {
      const job = await ok('POST', `/v1/hosts/${host}/actions/${action}`, {});
      assert.equal(job.kind, `host.${action}`);
      assert.equal(job.result.state, state);
      assert.equal((await t.admin.get(`/v1/hosts/${host}`)).body.state, state);
    }
    const events = await t.admin.get(`/v1/events?q=resourceUuid=${host}&q=type=host.state.changed`);
    assert.deepEqual(
      events.body.items.map((e: { data: { state: string } }) => e.data.state),
      ['Disabled', 'PreMaintenance', 'Maintenance', 'Enabled'],
    );
    // the state is administrative: the connection status is untouched
    assert.equal((await t.admin.get(`/v1/hosts/${host}`)).body.status, 'Connected');
  });

  test('zone and cluster: disable then enable', async () => {
    for (const path of [`/v1/zones/${infra.zone}`, `/v1/clusters/${infra.cluster}`]) {
      assert.equal((await ok('POST', `${path}/actions/disable`, {})).result.state, 'Disabled');
      assert.equal((await t.admin.get(path)).body.state, 'Disabled');
      assert.equal((await ok('POST', `${path}/actions/enable`, {})).result.state, 'Enabled');
      assert.equal((await t.admin.get(path)).body.state, 'Enabled');
    }
  });

  test('an unknown action is a 404; an action on an unknown resource is a 404', async () => {
    assert.equal((await t.admin.post(`/v1/zones/${infra.zone}/actions/maintain`, {})).status, 404);
    const res = await t.admin.post('/v1/hosts/01900000-0000-7000-8000-000000000000/actions/disable', {});
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'HOST_NOT_FOUND');
  });

  test('update changes the given fields only', async () => {
    const zone = (await ok('POST', '/v1/zones', { name: `res-up-${next()}`, description: 'first' }))
      .resourceUuid;
    const renamed = `res-renamed-${next()}`;
    const job = await ok('PATCH', `/v1/zones/${zone}`, { name: renamed });
    assert.equal(job.result.name, renamed);
    assert.equal(job.result.description, 'first');
    await ok('PATCH', `/v1/zones/${zone}`, { description: 'second' });
    const got = (await t.admin.get(`/v1/zones/${zone}`)).body;
    assert.equal(got.name, renamed);
    assert.equal(got.description, 'second');

    const host = infra.hosts[0]!;
    const before = (await t.admin.get(`/v1/hosts/${host}`)).body;
    const updated = await ok('PATCH', `/v1/hosts/${host}`, { description: 'rack 7' });
    assert.equal(updated.result.description, 'rack 7');
    assert.equal(updated.result.name, before.name);
    assert.equal(updated.result.managementIp, before.managementIp);
  });
});

describe('the job protocol', () => {
  test('without wait: 202, Location of the job, and the job is there', async () => {
    const res = await t.admin.post('/v1/zones', { name: `res-nowait-${next()}` });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('location'), `/v1/jobs/${res.body.uuid}`);
    assert.equal(res.body.kind, 'zone.create');
    assert.ok(['Pending', 'Running', 'Succeeded'].includes(res.body.state), res.body.state);
    const job = await t.admin.get(`${res.headers.get('location')}?wait=true`);
    assert.equal(job.status, 200);
    assert.equal(job.body.state, 'Succeeded');
    assert.equal(job.body.uuid, res.body.uuid);
  });

  test('with ?wait=true: 200 with the finished job, still with its Location', async () => {
    const name = `res-wait-${next()}`;
    const res = await t.admin.call('POST', '/v1/zones?wait=true', { name });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('location'), `/v1/jobs/${res.body.uuid}`);
    assert.equal(res.body.state, 'Succeeded');
    assert.equal(res.body.progress, 100);
    assert.equal(res.body.result.name, name);
    assert.ok(res.body.finishedAt);
  });

  test('a failed job also answers 200 with wait: the failure is in the job, not the HTTP status', async () => {
    await t.admin.post('/v1/simulator/faults', { point: 'step:zone.update/apply', times: 1 });
    const res = await t.admin.call('PATCH', `/v1/zones/${infra.zone}?wait=true`, { description: 'x' });
    assert.equal(res.status, 200);
    assert.equal(res.body.state, 'Failed');
    assert.equal(res.body.error.code, 'INJECTED_FAULT');
    // times: 1 — the fault is gone after firing once
    assert.deepEqual((await t.admin.get('/v1/simulator/faults')).body.items, []);
  });

  test('cancelling a finished job is 409 JOB_NOT_CANCELLABLE naming its state', async () => {
    const job = await ok('POST', '/v1/zones', { name: `res-cancel-${next()}` });
    const res = await t.admin.post(`/v1/jobs/${job.uuid}/actions/cancel`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'JOB_NOT_CANCELLABLE');
    assert.deepEqual(res.body.error.details, { state: 'Succeeded' });
    assert.equal((await t.admin.get(`/v1/jobs/${job.uuid}`)).body.state, 'Succeeded');
  });

  test('a job still waiting in its resource queue can be cancelled and never runs', async () => {
    const zone = (await ok('POST', '/v1/zones', { name: `res-q-${next()}` })).resourceUuid;
    // the first update holds the zone's queue (parallelism 1) while the second waits behind it
    await t.admin.post('/v1/simulator/faults', { point: 'step:zone.update/apply', delayMs: 1000, times: 1 });
    try {
      const first = await t.admin.patch(`/v1/zones/${zone}`, { description: 'first' });
      const second = await t.admin.patch(`/v1/zones/${zone}`, { description: 'second' });
      assert.equal(second.body.state, 'Pending');
      const cancel = await t.admin.post(`/v1/jobs/${second.body.uuid}/actions/cancel`, {});
      assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
      assert.equal(cancel.body.state, 'Cancelled');
      assert.equal((await t.admin.get(`/v1/jobs/${first.body.uuid}?wait=true`)).body.state, 'Succeeded');
      const again = (await t.admin.get(`/v1/jobs/${second.body.uuid}`)).body;
      assert.equal(again.state, 'Cancelled');
      assert.equal(again.startedAt, null);
      assert.equal((await t.admin.get(`/v1/zones/${zone}`)).body.description, 'first');
    } finally {
      await t.admin.delete('/v1/simulator/faults');
    }
  });

  test('cancelling an unknown job is 404 JOB_NOT_FOUND', async () => {
    const res = await t.admin.post('/v1/jobs/01900000-0000-7000-8000-000000000000/actions/cancel', {});
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'JOB_NOT_FOUND');
  });
});
