/**
 * Cinder v3 through the façade (docs/openstack-network-volume.md), over HTTP as cinderclient
 * calls it: volume create (202, creating → available by polling), attach (os-attach and
 * /attachments) → in-use with its attachment, detach → available, extend, snapshots, types,
 * quota sets and limits, delete → gone; each step checked against the Nimbus volume.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { OsClient } from './openstack-fixtures.js';
import { tenant } from './router-fixtures.js';
import { buildVmEnv, GiB, type VmEnv } from './vm-env.js';

let t: TestNode;
let env: VmEnv;
let alice: OsClient;
let aliceUuid: string;
let aliceApi: Awaited<ReturnType<typeof tenant>>['api'];
let base: string;

before(async () => {
  t = await startTestNode();
  env = await buildVmEnv(t, { prefix: 'osv', storage: 'nfs', hostCpu: 32, hostMemory: 64 * GiB });
  const a = await tenant(t, 'osv-alice');
  aliceApi = a.api;
  aliceUuid = a.uuid;
  alice = OsClient.of(a.api);
  base = `/volume/v3/${aliceUuid}`;
});
after(() => t.stop());

/** polls the volume's status as a Cinder client does, until it is one of `want` */
async function until(c: OsClient, id: string, want: string[]): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const v = (await c.get(`${base}/volumes/${id}`)).body.volume;
    if (want.includes(v.status)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`volume ${id} never became ${want.join('|')}`);
}

async function aliceVm(): Promise<string> {
  const job = await aliceApi.job('POST', '/v1/vms', {
    name: `osv-vm-${Math.random().toString(36).slice(2, 8)}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  return job.resourceUuid;
}

test('volume create, attach, detach, extend, delete: Cinder statuses over Nimbus states', async () => {
  // openstack volume create --size 1 vol1 (cinderclient sends every field, unset ones null)
  const created = await alice.expect(202, 'POST', `${base}/volumes`, {
    volume: {
      size: 1,
      name: 'vol1',
      description: null,
      snapshot_id: null,
      source_volid: null,
      volume_type: null,
      availability_zone: null,
      metadata: {},
      imageRef: null,
      consistencygroup_id: null,
      backup_id: null,
    },
  });
  const vol = created.body.volume;
  assert.equal(vol.name, 'vol1');
  assert.equal(vol.size, 1);
  assert.ok(['creating', 'available'].includes(vol.status), vol.status);
  assert.equal(created.headers.get('openstack-api-version'), 'volume 3.0');
  const ready = await until(alice, vol.id, ['available']);
  assert.equal(ready.volume_type, 'osv-ps', 'its type is the primary storage it landed on');
  const native = (await aliceApi.get(`/v1/volumes/${vol.id}`)).body;
  assert.equal(native.size, GiB);
  assert.equal(native.state, 'Ready');

  // attach through the volume action, then in-use with its attachment
  const vm = await aliceVm();
  await alice.expect(202, 'POST', `${base}/volumes/${vol.id}/action`, {
    'os-attach': { instance_uuid: vm, mountpoint: '/dev/vdb' },
  });
  const inUse = await until(alice, vol.id, ['in-use']);
  const attachments = inUse.attachments as Record<string, unknown>[];
  assert.equal(attachments.length, 1);
  assert.equal(attachments[0]!.server_id, vm);
  assert.equal(attachments[0]!.device, '/dev/vdb');
  assert.equal((await aliceApi.get(`/v1/volumes/${vol.id}`)).body.vmUuid, vm);
  // an attached volume is not deleted (Cinder: status must be available)
  const refused = await alice.expect(400, 'DELETE', `${base}/volumes/${vol.id}`);
  assert.match(refused.body.badRequest.message, /attached to server/);
  assert.equal(refused.body.badRequest.code, 400);

  // detach, extend
  await alice.expect(202, 'POST', `${base}/volumes/${vol.id}/action`, {
    'os-detach': { attachment_id: vol.id },
  });
  assert.deepEqual((await until(alice, vol.id, ['available'])).attachments, []);
  await alice.expect(202, 'POST', `${base}/volumes/${vol.id}/action`, { 'os-extend': { new_size: 3 } });
  for (let i = 0; i < 600 && (await alice.get(`${base}/volumes/${vol.id}`)).body.volume.size !== 3; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal((await aliceApi.get(`/v1/volumes/${vol.id}`)).body.size, 3 * GiB);
  const shrink = await alice.expect(400, 'POST', `${base}/volumes/${vol.id}/action`, {
    'os-extend': { new_size: 2 },
  });
  assert.match(shrink.body.badRequest.message, /os-extend.new_size/);

  // rename; delete → gone for Cinder, and expunged in Nimbus
  const renamed = await alice.expect(200, 'PUT', `${base}/volumes/${vol.id}`, {
    volume: { name: 'vol1b', description: 'data' },
  });
  assert.equal(renamed.body.volume.name, 'vol1b');
  await until(alice, vol.id, ['available']);
  await alice.expect(202, 'DELETE', `${base}/volumes/${vol.id}`);
  for (let i = 0; i < 600 && (await aliceApi.get(`/v1/volumes/${vol.id}`)).status !== 404; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal((await aliceApi.get(`/v1/volumes/${vol.id}`)).status, 404, 'expunged after the delete');
  const gone = await alice.expect(404, 'GET', `${base}/volumes/${vol.id}`);
  assert.equal(gone.body.itemNotFound.code, 404);
  await aliceApi.job('DELETE', `/v1/vms/${vm}`);
});

test('attachments (3.27): create attaches, delete detaches; below 3.27 they are not there', async () => {
  const vol = (await alice.expect(202, 'POST', `${base}/volumes`, { volume: { size: 1, name: 'vol-att' } }))
    .body.volume;
  await until(alice, vol.id, ['available']);
  const vm = await aliceVm();
  const v327 = { 'openstack-api-version': 'volume 3.27' };
  assert.equal((await alice.call('GET', `${base}/attachments`)).status, 404, 'not at 3.0');
  const made = await alice.call(
    'POST',
    `${base}/attachments`,
    { attachment: { volume_uuid: vol.id, instance_uuid: vm } },
    v327,
  );
  assert.equal(made.status, 200, JSON.stringify(made.body));
  assert.equal(made.body.attachment.id, vol.id);
  assert.equal(made.headers.get('openstack-api-version'), 'volume 3.27');
  await until(alice, vol.id, ['in-use']);
  // the VM's root volume is a volume too (bootable, in-use): filter on the data volume
  const listed = await alice.call('GET', `${base}/attachments/detail?volume_id=${vol.id}`, undefined, v327);
  assert.deepEqual(
    listed.body.attachments.map((a: { instance: string }) => a.instance),
    [vm],
  );
  assert.equal((await alice.call('DELETE', `${base}/attachments/${vol.id}`, undefined, v327)).status, 200);
  await until(alice, vol.id, ['available']);
  assert.equal((await alice.call('GET', `${base}/attachments/${vol.id}`, undefined, v327)).status, 404);
  const tooNew = await alice.call('GET', `${base}/volumes`, undefined, {
    'openstack-api-version': 'volume 3.99',
  });
  assert.equal(tooNew.status, 406);
  assert.match(tooNew.body.computeFault.message, /maximum is 3.27/);
  await aliceApi.job('DELETE', `/v1/vms/${vm}`);
});

test('snapshots, types, quota sets and limits', async () => {
  const vol = (await alice.expect(202, 'POST', `${base}/volumes`, { volume: { size: 2, name: 'vol-snap' } }))
    .body.volume;
  await until(alice, vol.id, ['available']);
  const snap = (
    await alice.expect(202, 'POST', `${base}/snapshots`, {
      snapshot: { volume_id: vol.id, name: 'snap1', force: false },
    })
  ).body.snapshot;
  assert.equal(snap.volume_id, vol.id);
  assert.equal(snap.size, 2);
  let shown = snap;
  for (let i = 0; i < 600 && shown.status !== 'available'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    shown = (await alice.get(`${base}/snapshots/${snap.id}`)).body.snapshot;
  }
  assert.equal(shown.status, 'available');
  assert.equal((await aliceApi.get(`/v1/volume-snapshots/${snap.id}`)).body.volumeUuid, vol.id);
  const listed = (await alice.get(`${base}/snapshots/detail?volume_id=${vol.id}`)).body.snapshots;
  assert.deepEqual(
    listed.map((s: { id: string }) => s.id),
    [snap.id],
  );
  const noVolume = await alice.expect(400, 'POST', `${base}/snapshots`, { snapshot: { volume_id: env.ps } });
  assert.match(noVolume.body.badRequest.message, /snapshot.volume_id/);

  const types = (await alice.get(`${base}/types`)).body.volume_types;
  assert.deepEqual(
    types.map((x: { id: string; name: string }) => [x.id, x.name]),
    [[env.ps, 'osv-ps']],
  );
  const typed = (
    await alice.expect(202, 'POST', `${base}/volumes`, { volume: { size: 1, volume_type: 'osv-ps' } })
  ).body.volume;
  assert.equal((await until(alice, typed.id, ['available'])).volume_type, 'osv-ps');
  const badType = await alice.expect(400, 'POST', `${base}/volumes`, {
    volume: { size: 1, volume_type: 'gold' },
  });
  assert.match(badType.body.badRequest.message, /volume_type: no volume type gold/);

  // the admin sets alice's quotas; she sees them and is held to them (413 overLimit)
  const adminOs = OsClient.of(t.admin);
  const adminProject = (
    await t.db.db.selectFrom('accounts').select('uuid').where('type', '=', 'admin').executeTakeFirstOrThrow()
  ).uuid;
  await adminOs.expect(200, 'PUT', `/volume/v3/${adminProject}/os-quota-sets/${aliceUuid}`, {
    quota_set: { volumes: 10, gigabytes: 5, snapshots: 4 },
  });
  const q = (await alice.get(`${base}/os-quota-sets/${aliceUuid}?usage=True`)).body.quota_set;
  // Nimbus counts root disks in volume.capacity too: in_use is the account's usage, in GiB
  const used = await t.db.db
    .selectFrom('quotas')
    .select('used')
    .where('accountUuid', '=', aliceUuid)
    .where('name', '=', 'volume.capacity')
    .executeTakeFirstOrThrow();
  assert.ok(Number(used.used) >= 3 * GiB);
  assert.deepEqual(q.gigabytes, {
    limit: 5,
    in_use: Math.ceil(Number(used.used) / GiB),
    reserved: 0,
    allocated: 0,
  });
  assert.equal(q.volumes.limit, 10);
  assert.equal(q.snapshots.in_use, 1);
  const over = await alice.expect(413, 'POST', `${base}/volumes`, { volume: { size: 3, name: 'too-big' } });
  assert.equal(over.body.overLimit.code, 413);
  const limits = (await alice.get(`${base}/limits`)).body.limits.absolute;
  assert.equal(limits.maxTotalVolumeGigabytes, 5);
  assert.equal(limits.totalGigabytesUsed, Math.ceil(Number(used.used) / GiB));
  assert.equal(
    (await alice.call('PUT', `${base}/os-quota-sets/${aliceUuid}`, { quota_set: { volumes: 99 } })).status,
    403,
  );

  await alice.expect(202, 'DELETE', `${base}/snapshots/${snap.id}`);
  for (let i = 0; i < 600 && (await alice.call('GET', `${base}/snapshots/${snap.id}`)).status !== 404; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal((await alice.call('GET', `${base}/snapshots/${snap.id}`)).status, 404);
});
