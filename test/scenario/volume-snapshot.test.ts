/**
 * Volume snapshots through the API: the tree per volume (parent = the volume's latest; a revert
 * moves latest back, so the next snapshot branches), revert rules (the VM Stopped, or the volume
 * detached), subtree deletes and what happens to `latest`, images from snapshots, quota
 * snapshot.num, and isolation between accounts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
} from './volume-fixtures.js';

let t: TestNode;
let infra: Infra;
let nfs: string;
let a: { api: Api; uuid: string };

before(async () => {
  t = await startTestNode();
  infra = await buildInfra(t.admin, 1, 'snap');
  nfs = await sharedStorage(t, infra, 1000 * GiB);
  a = await tenant(t);
});
after(() => t.stop());

const snap = async (api: Api, volumeUuid: string) =>
  (await ok(api, 'POST', '/v1/volume-snapshots', { name: `s-${next()}`, volumeUuid })).result as {
    uuid: string;
    parentUuid: string | null;
    latest: boolean;
  };
const tree = async (volumeUuid: string) => {
  const res = await a.api.get(`/v1/volume-snapshots?q=volumeUuid=${volumeUuid}&limit=1000`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return Object.fromEntries(
    (res.body.items as Array<{ uuid: string; parentUuid: string | null; latest: boolean }>).map((s) => [
      s.uuid,
      { parent: s.parentUuid, latest: s.latest },
    ]),
  );
};
const dataVolume = async (api: Api, vmUuid?: string) =>
  (
    await ok(api, 'POST', '/v1/volumes', {
      name: `d-${next()}`,
      size: GiB,
      primaryStorageUuid: nfs,
      ...(vmUuid ? { vmUuid } : {}),
    })
  ).resourceUuid as string;

describe('the snapshot tree', () => {
  test('a chain, a revert, then a branch: parents and the latest flag as a tree', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Stopped' });
    const root = await rootVolume(t, { vm, account: a.uuid, ps: nfs });
    const s1 = await snap(a.api, root);
    assert.equal(s1.parentUuid, null);
    assert.equal(s1.latest, true);
    const s2 = await snap(a.api, root);
    assert.equal(s2.parentUuid, s1.uuid);
    assert.deepEqual(await tree(root), {
      [s1.uuid]: { parent: null, latest: false },
      [s2.uuid]: { parent: s1.uuid, latest: true },
    });
    const reverted = await ok(a.api, 'POST', `/v1/volume-snapshots/${s1.uuid}/actions/revert`, {});
    assert.equal(reverted.result.latest, true);
    assert.equal(
      (await t.db.db.selectFrom('vms').select('task').where('uuid', '=', vm).executeTakeFirstOrThrow()).task,
      null,
    );
    const s3 = await snap(a.api, root);
    assert.equal(
      s3.parentUuid,
      s1.uuid,
      'after a revert the next snapshot branches from the reverted-to one',
    );
    assert.deepEqual(await tree(root), {
      [s1.uuid]: { parent: null, latest: false },
      [s2.uuid]: { parent: s1.uuid, latest: false },
      [s3.uuid]: { parent: s1.uuid, latest: true },
    });
    const children = await a.api.get(`/v1/volume-snapshots?q=parentUuid=${s1.uuid}&count=true`);
    assert.equal(children.body.total, 2);
  });

  test('deleting a snapshot deletes its subtree; latest falls back to the nearest survivor; quota given back', async () => {
    const v = await dataVolume(a.api);
    const s1 = await snap(a.api, v);
    const s2 = await snap(a.api, v);
    const s3 = await snap(a.api, v);
    const before = (await usage(t, a.uuid))['snapshot.num']!;
    await ok(a.api, 'DELETE', `/v1/volume-snapshots/${s2.uuid}`);
    assert.deepEqual(await tree(v), { [s1.uuid]: { parent: null, latest: true } });
    assert.equal((await usage(t, a.uuid))['snapshot.num'], before - 2);
    assert.equal((await a.api.get(`/v1/volume-snapshots/${s3.uuid}`)).status, 404);
    await ok(a.api, 'DELETE', `/v1/volume-snapshots/${s1.uuid}`);
    assert.deepEqual(await tree(v), {});
    const s4 = await snap(a.api, v);
    assert.equal(s4.parentUuid, null, 'a volume with no snapshot left starts a new tree');
  });
});

describe('revert rules', () => {
  test('the VM must be Stopped; a detached volume reverts freely', async () => {
    const vm = await newVm(t, { account: a.uuid, host: infra.hosts[0]!, state: 'Running' });
    const v = await dataVolume(a.api, vm);
    const s = await snap(a.api, v);
    let res = await a.api.post(`/v1/volume-snapshots/${s.uuid}/actions/revert`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VM_INVALID_STATE');
    assert.match(res.body.error.message, /it is Running; revert-volume needs Stopped/);
    await t.db.db
      .updateTable('vms')
      .set({ state: 'Stopped', task: 'start' })
      .where('uuid', '=', vm)
      .execute();
    res = await a.api.post(`/v1/volume-snapshots/${s.uuid}/actions/revert`, {});
    assert.equal(res.body.error.code, 'VM_BUSY');
    await t.db.db.updateTable('vms').set({ task: null }).where('uuid', '=', vm).execute();
    await ok(a.api, 'POST', `/v1/volume-snapshots/${s.uuid}/actions/revert`, {});
    await t.db.db.updateTable('vms').set({ state: 'Running' }).where('uuid', '=', vm).execute();
    await ok(a.api, 'POST', `/v1/volumes/${v}/actions/detach`, {});
    await ok(a.api, 'POST', `/v1/volume-snapshots/${s.uuid}/actions/revert`, {});
  });

  test('a snapshot of a Deleted volume cannot be taken; nor reverted to', async () => {
    const v = await dataVolume(a.api);
    const s = await snap(a.api, v);
    await ok(a.api, 'DELETE', `/v1/volumes/${v}`);
    let res = await a.api.post('/v1/volume-snapshots', { name: 'x', volumeUuid: v });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'VOLUME_INVALID_STATE');
    res = await a.api.post(`/v1/volume-snapshots/${s.uuid}/actions/revert`, {});
    assert.equal(res.body.error.code, 'VOLUME_INVALID_STATE');
  });
});

describe('images from snapshots', () => {
  test('a Ready image with url snapshot://…, the volume’s size and media type', async () => {
    const v = await dataVolume(a.api);
    const s = await snap(a.api, v);
    const job = await ok(a.api, 'POST', `/v1/volume-snapshots/${s.uuid}/actions/create-image`, {
      name: 'from-snap',
    });
    assert.equal(job.result.state, 'Ready');
    assert.equal(job.result.url, `snapshot://${s.uuid}`);
    assert.equal(job.result.mediaType, 'DataVolumeTemplate');
    assert.equal(job.result.size, GiB);
  });
});

describe('quota and isolation', () => {
  test('snapshot.num is enforced at admission; another account sees nothing', async () => {
    const c = await tenant(t);
    const v = await dataVolume(c.api);
    await ok(t.admin, 'PATCH', `/v1/quotas/${c.uuid}`, { 'snapshot.num': 2 });
    await snap(c.api, v);
    const s = await snap(c.api, v);
    const res = await c.api.post('/v1/volume-snapshots', { name: 'third', volumeUuid: v });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal(res.body.error.details.quota, 'snapshot.num');
    assert.equal(
      (await t.db.db.selectFrom('volumeSnapshots').select('uuid').where('volumeUuid', '=', v).execute())
        .length,
      2,
    );
    assert.equal((await a.api.get(`/v1/volume-snapshots/${s.uuid}`)).status, 404);
    assert.equal((await a.api.post(`/v1/volume-snapshots/${s.uuid}/actions/revert`, {})).status, 404);
    assert.equal((await a.api.delete(`/v1/volume-snapshots/${s.uuid}`)).status, 404);
    assert.equal((await a.api.get(`/v1/volume-snapshots?q=volumeUuid=${v}&count=true`)).body.total, 0);
  });
});
