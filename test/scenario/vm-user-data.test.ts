/**
 * User-data on a VM create (docs/compute.md "User-data"), over HTTP: the native create keeps it
 * and the simulated host receives it in every vm.start spec (as a real host writes it on the
 * config drive; the simulator records it in `simulator_vms`), a GET shows only `hasUserData`,
 * oversize and mistyped user-data is refused naming the field with nothing made, and the
 * OpenStack façade's server create delivers Nova's base64 `user_data` the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fieldsOf } from '../support/node.js';
import {
  keystoneToken,
  type OpenStackNode,
  osCall,
  startOpenStackNode,
  until,
} from './openstack-fixtures.js';
import { createVm, ok, simVmOf } from './vm-env.js';

let n: OpenStackNode;
let token: string;

before(async () => {
  n = await startOpenStackNode('udata');
  token = (await keystoneToken(n.t.url)).token;
});
after(() => n.t.stop());

const CLOUD_CONFIG = '#cloud-config\nruncmd:\n  - echo "héllo from user-data" > /etc/motd\n';
const vmCount = async () =>
  Number(
    (
      await n.t.db.db
        .selectFrom('vms')
        .select((e) => e.fn.countAll().as('c'))
        .executeTakeFirstOrThrow()
    ).c,
  );

describe('user-data on a VM create', () => {
  test('native create: the host receives it at every start; GET shows only hasUserData', async () => {
    const job = await createVm(n.t, n.env, { userData: CLOUD_CONFIG });
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    const uuid = job.resourceUuid as string;
    assert.equal((await simVmOf(n.t, uuid))?.userData, CLOUD_CONFIG);

    const got = await n.t.admin.get(`/v1/vms/${uuid}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.hasUserData, true);
    assert.equal('userData' in got.body, false);
    assert.doesNotMatch(JSON.stringify(got.body), /user-data/);
    // nor does the create job's record carry it (it may hold secrets)
    const jobRow = await n.t.admin.get(`/v1/jobs/${job.uuid}`);
    assert.doesNotMatch(JSON.stringify(jobRow.body), /héllo/);
    const listed = await n.t.admin.get(`/v1/vms?q=hasUserData=true&fields=uuid`);
    assert.ok(listed.body.items.some((v: { uuid: string }) => v.uuid === uuid));

    // a stop and a start: the host is given the same user-data again
    await ok(n.t, 'POST', `/v1/vms/${uuid}/actions/stop`, { force: true });
    await n.t.db.db.updateTable('simulatorVms').set({ userData: null }).where('vmUuid', '=', uuid).execute();
    await ok(n.t, 'POST', `/v1/vms/${uuid}/actions/start`, {});
    assert.equal((await simVmOf(n.t, uuid))?.userData, CLOUD_CONFIG);
  });

  test('a VM created without user-data has none', async () => {
    const job = await createVm(n.t, n.env);
    assert.equal(job.state, 'Succeeded', JSON.stringify(job));
    assert.equal((await simVmOf(n.t, job.resourceUuid))?.userData, null);
    assert.equal((await n.t.admin.get(`/v1/vms/${job.resourceUuid}`)).body.hasUserData, false);
  });

  test('bad user-data is refused naming userData; nothing is made', async () => {
    const before = await vmCount();
    const body = { name: 'udata-bad', imageUuid: n.env.image, instanceOfferingUuid: n.env.small };
    // 32,769 characters (under the schema's maxLength) but 65,538 bytes of UTF-8
    for (const userData of ['é'.repeat(32769), 'x'.repeat(65537), 42, null]) {
      const res = await n.t.admin.post('/v1/vms', { ...body, userData });
      assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
      assert.deepEqual(fieldsOf(res.body), ['userData']);
    }
    // exactly 64 KiB is taken
    const edge = await createVm(n.t, n.env, { userData: `#!/bin/sh\n${'x'.repeat(65536 - 10)}` });
    assert.equal(edge.state, 'Succeeded', JSON.stringify(edge).slice(0, 300));
    assert.equal(await vmCount(), before + 1);
  });

  test('OpenStack server create: Nova base64 user_data reaches the host; bad base64 is refused', async () => {
    const nova = (method: string, path: string, body?: unknown) =>
      osCall(`${n.t.url}/compute/v2.1${path}`, method, token, body);
    const created = await nova('POST', '/servers', {
      server: {
        name: 'udata-os',
        imageRef: n.env.image,
        flavorRef: n.env.small,
        user_data: Buffer.from(CLOUD_CONFIG).toString('base64'),
      },
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.server.id;
    const active = await until(
      () => nova('GET', `/servers/${id}`),
      (r) => r.body.server?.status !== 'BUILD',
    );
    assert.equal(active.body.server.status, 'ACTIVE');
    assert.equal((await simVmOf(n.t, id))?.userData, CLOUD_CONFIG);
    assert.equal((await n.t.admin.get(`/v1/vms/${id}`)).body.hasUserData, true);

    const before = await vmCount();
    const server = { name: 'udata-os-bad', imageRef: n.env.image, flavorRef: n.env.small };
    const notBase64 = await nova('POST', '/servers', { server: { ...server, user_data: 'not base64!' } });
    assert.equal(notBase64.status, 400);
    assert.match(notBase64.body.badRequest.message, /user_data/);
    const big = Buffer.from('y'.repeat(65537)).toString('base64');
    const tooBig = await nova('POST', '/servers', { server: { ...server, user_data: big } });
    assert.equal(tooBig.status, 400);
    assert.match(tooBig.body.badRequest.message, /user_data.*65536/);
    assert.equal(await vmCount(), before);
  });
});
