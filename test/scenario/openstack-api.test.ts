/**
 * The OpenStack-compatible API over HTTP, as the references describe it (Keystone in
 * openstack-identity.test.ts): Nova microversion negotiation,
 * server create → poll → actions with Nova's states, faults, tenant isolation, limit/marker
 * paging; flavors and keypairs rules; Glance's queued → active upload and its refusals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  keystoneToken,
  type OpenStackNode,
  osCall,
  startOpenStackNode,
  TENANT,
  until,
} from './openstack-fixtures.js';

let n: OpenStackNode;
let base: string;
let token: string;
let adminToken: string;

before(async () => {
  n = await startOpenStackNode('osapi');
  base = n.t.url;
  token = (await keystoneToken(base)).token;
  adminToken = (
    await keystoneToken(base, { user: 'admin', project: 'admin', password: 'admin-test-password' })
  ).token;
});
after(() => n.t.stop());

const nova = (
  method: string,
  path: string,
  body?: unknown,
  tok = token,
  headers: Record<string, string> = {},
) => osCall(`${base}/compute/v2.1${path}`, method, tok, body, headers);
const glance = (method: string, path: string, body?: unknown, tok = token) =>
  osCall(`${base}/image/v2${path}`, method, tok, body);

async function serverStatus(id: string, tok = token): Promise<any> {
  return (await nova('GET', `/servers/${id}`, undefined, tok)).body.server;
}

describe('compute (Nova v2.1)', () => {
  test('microversions: none, 2.1 and latest are served as 2.1; 2.90 is 406; garbage is 400', async () => {
    const doc = await osCall(`${base}/compute/`, 'GET', undefined);
    assert.deepEqual([doc.body.versions[0].min_version, doc.body.versions[0].version], ['2.1', '2.1']);
    const asks: Record<string, string>[] = [
      {},
      { 'openstack-api-version': 'compute 2.1' },
      { 'x-openstack-nova-api-version': 'latest' },
    ];
    for (const h of asks) {
      const res = await nova('GET', '/flavors', undefined, token, h);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('openstack-api-version'), 'compute 2.1');
    }
    const high = await nova('GET', '/flavors', undefined, token, { 'openstack-api-version': 'compute 2.90' });
    assert.equal(high.status, 406);
    const junk = await nova('GET', '/flavors', undefined, token, { 'openstack-api-version': 'compute two' });
    assert.equal(junk.status, 400);
    assert.equal(junk.body.badRequest.code, 400);
  });

  test('server create is 202; the client polls BUILD → ACTIVE; actions move the Nova states', async () => {
    const created = await nova('POST', '/servers', {
      server: { name: 'api-vm', imageRef: n.env.image, flavorRef: n.env.small, metadata: { role: 'web' } },
    });
    assert.equal(created.status, 202);
    const id = created.body.server.id;
    assert.match(created.headers.get('location')!, new RegExp(`/compute/v2.1/servers/${id}$`));
    const active = await until(
      () => serverStatus(id),
      (s) => s.status !== 'BUILD',
    );
    assert.equal(active.status, 'ACTIVE');
    assert.deepEqual([active['OS-EXT-STS:vm_state'], active['OS-EXT-STS:power_state']], ['active', 1]);
    assert.deepEqual(active.metadata, { role: 'web' });
    assert.equal(active.flavor.id, n.env.small);

    // unpause of an ACTIVE server is Nova's 409 conflictingRequest, naming the state
    const refused = await nova('POST', `/servers/${id}/action`, { unpause: null });
    assert.equal(refused.status, 409);
    assert.match(refused.body.conflictingRequest.message, /Running/);

    assert.equal((await nova('POST', `/servers/${id}/action`, { 'os-stop': null })).status, 202);
    const off = await until(
      () => serverStatus(id),
      (s) => s.status === 'SHUTOFF',
    );
    assert.deepEqual(
      [off['OS-EXT-STS:vm_state'], off['OS-EXT-STS:power_state'], off['OS-EXT-STS:task_state']],
      ['stopped', 4, null],
    );
    const native = await n.t.admin.get(`/v1/vms/${id}`);
    assert.equal(native.body.state, 'Stopped');

    const renamed = await nova('PUT', `/servers/${id}`, { server: { name: 'api-vm-2' } });
    assert.equal(renamed.body.server.name, 'api-vm-2');
    assert.equal((await nova('DELETE', `/servers/${id}`)).status, 204);
    const gone = await until(
      () => nova('GET', `/servers/${id}`),
      (r) => r.status === 404,
    );
    assert.equal(gone.body.itemNotFound.code, 404);
  });

  test('createImage of an ACTIVE server: an image via a root-volume snapshot, which is then removed', async () => {
    const id = (
      await nova('POST', '/servers', {
        server: { name: 'snap-vm', imageRef: n.env.image, flavorRef: n.env.small },
      })
    ).body.server.id;
    await until(
      () => serverStatus(id),
      (s) => s.status === 'ACTIVE',
    );
    const res = await nova('POST', `/servers/${id}/action`, {
      createImage: { name: 'snap-of-vm', metadata: { purpose: 'ci' } },
    });
    assert.equal(res.status, 202);
    const imageId = res.body.image_id;
    assert.match(res.headers.get('location')!, new RegExp(`/image/v2/images/${imageId}$`));
    const image = await until(
      () => glance('GET', `/images/${imageId}`),
      (r) => r.body.status === 'active' || r.body.status === 'killed',
    );
    assert.equal(image.body.status, 'active');
    assert.deepEqual(
      [image.body.purpose, image.body.instance_uuid, image.body.image_type],
      ['ci', id, 'snapshot'],
    );
    const vm = await n.t.admin.get(`/v1/vms/${id}`);
    const snapshots = await until(
      () =>
        n.t.db.db
          .selectFrom('volumeSnapshots')
          .select('uuid')
          .where('volumeUuid', '=', vm.body.rootVolumeUuid)
          .where('state', '!=', 'Deleted' as never)
          .execute(),
      (rows) => rows.length === 0,
    );
    assert.equal(snapshots.length, 0, 'the snapshot made for the image is removed');
  });

  test('volume attachments: a Nimbus volume attached through Nova is the VM’s; detach frees it', async () => {
    const id = (
      await nova('POST', '/servers', {
        server: { name: 'vol-vm', imageRef: n.env.image, flavorRef: n.env.small },
      })
    ).body.server.id;
    await until(
      () => serverStatus(id),
      (s) => s.status === 'ACTIVE',
    );
    const account = await n.t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('name', '=', TENANT.project)
      .executeTakeFirst();
    const tenant = await n.t.anon.login(TENANT.project, TENANT.password);
    // on local storage a volume lives on one host: made attached to the VM, so it is on the VM's
    const vol = await tenant.job('POST', '/v1/volumes', { name: 'data-1', size: 1024 ** 3, vmUuid: id });
    assert.equal(vol.state, 'Succeeded', JSON.stringify(vol));
    const volumeId = vol.resourceUuid;
    const listed = await nova('GET', `/servers/${id}/os-volume_attachments`);
    assert.deepEqual(
      listed.body.volumeAttachments.map((v: any) => [v.volumeId, v.serverId]),
      [[volumeId, id]],
    );
    assert.deepEqual(
      (await serverStatus(id))['os-extended-volumes:volumes_attached'].map((v: any) => v.id),
      [volumeId],
    );
    assert.equal((await nova('DELETE', `/servers/${id}/os-volume_attachments/${volumeId}`)).status, 202);
    const detached = await until(
      () => nova('GET', `/servers/${id}/os-volume_attachments`),
      (r) => r.body.volumeAttachments.length === 0,
    );
    assert.deepEqual(detached.body.volumeAttachments, []);
    const attached = await nova('POST', `/servers/${id}/os-volume_attachments`, {
      volumeAttachment: { volumeId },
    });
    assert.equal(attached.status, 200, JSON.stringify(attached.body));
    await until(
      () => nova('GET', `/servers/${id}/os-volume_attachments`),
      (r) => r.body.volumeAttachments.length === 1,
    );
    const row = await n.t.db.db
      .selectFrom('volumes')
      .select(['vmUuid', 'accountUuid'])
      .where('uuid', '=', volumeId)
      .executeTakeFirst();
    assert.deepEqual(row, { vmUuid: id, accountUuid: account!.uuid });
    // another project's volume is not found from here
    assert.equal(
      (
        await nova('POST', `/servers/${id}/os-volume_attachments`, {
          volumeAttachment: { volumeId: n.env.ps },
        })
      ).status,
      404,
    );
  });

  test('another project’s server is 404; the admin sees it only with all_tenants', async () => {
    const mine = (
      await nova('POST', '/servers', {
        server: { name: 'iso-vm', imageRef: n.env.image, flavorRef: n.env.small },
      })
    ).body.server.id;
    assert.equal((await nova('GET', `/servers/${mine}`, undefined, adminToken)).status, 200);
    const adminList = await nova('GET', '/servers', undefined, adminToken);
    assert.ok(!adminList.body.servers.some((s: any) => s.id === mine), 'the admin’s own project only');
    const all = await nova('GET', '/servers?all_tenants=1', undefined, adminToken);
    assert.ok(all.body.servers.some((s: any) => s.id === mine));
    const adminVm = (
      await nova(
        'POST',
        '/servers',
        { server: { name: 'admin-vm', imageRef: n.env.image, flavorRef: n.env.small } },
        adminToken,
      )
    ).body.server.id;
    assert.equal((await nova('GET', `/servers/${adminVm}`)).status, 404);
    assert.equal((await nova('POST', `/servers/${adminVm}/action`, { 'os-stop': null })).status, 404);
    assert.equal((await nova('DELETE', `/servers/${adminVm}`)).status, 404);
  });

  test('paging: limit and marker walk every server once, newest first, with a next link', async () => {
    for (let i = 0; i < 3; i++)
      await nova('POST', '/servers', {
        server: { name: `page-${i}`, imageRef: n.env.image, flavorRef: n.env.small },
      });
    const all = (await nova('GET', '/servers')).body.servers.map((s: any) => s.id);
    assert.ok(all.length >= 4);
    const seen: string[] = [];
    let path = '/servers?limit=2';
    for (let i = 0; i < 10 && path; i++) {
      const page = await nova('GET', path);
      assert.ok(page.body.servers.length <= 2);
      seen.push(...page.body.servers.map((s: any) => s.id));
      const next = page.body.servers_links?.[0]?.href as string | undefined;
      path = next ? next.slice(next.indexOf('/servers')) : '';
    }
    assert.deepEqual(seen, all);
    const named = await nova('GET', '/servers/detail?name=page-1');
    assert.deepEqual(
      named.body.servers.map((s: any) => s.name),
      ['page-1'],
    );
    assert.equal((await nova('GET', '/servers?marker=01a00000-0000-7000-8000-000000000000')).status, 404);
  });

  test('a bad create names the field and makes nothing', async () => {
    const before = (await n.t.db.db.selectFrom('vms').select('uuid').execute()).length;
    const res = await nova('POST', '/servers', {
      server: { name: 'bad', imageRef: 'not-an-id', flavorRef: n.env.small },
    });
    assert.equal(res.status, 400);
    assert.match(res.body.badRequest.message, /server\.imageRef/);
    assert.equal((await n.t.db.db.selectFrom('vms').select('uuid').execute()).length, before);
  });

  test('flavors: tenants read them, only the admin makes them', async () => {
    const detail = await nova('GET', '/flavors/detail');
    const small = detail.body.flavors.find((f: any) => f.id === n.env.small);
    assert.deepEqual([small.ram, small.vcpus, small.disk], [1024, 1, 0]);
    const denied = await nova('POST', '/flavors', { flavor: { name: 'big', ram: 8192, vcpus: 4, disk: 0 } });
    assert.equal(denied.status, 403);
    const made = await nova(
      'POST',
      '/flavors',
      { flavor: { name: 'big', ram: 8192, vcpus: 4, disk: 0 } },
      adminToken,
    );
    assert.equal(made.status, 200);
    assert.deepEqual([made.body.flavor.ram, made.body.flavor.vcpus], [8192, 4]);
    assert.equal((await nova('GET', '/flavors/nope')).status, 404);
  });

  test('keypairs: import a public key, a second one of that name is 409, the fingerprint is the key’s', async () => {
    const made = await nova('POST', '/os-keypairs', { keypair: { name: 'gen' } });
    assert.equal(made.status, 200);
    const pub = made.body.keypair.public_key as string;
    const imported = await nova('POST', '/os-keypairs', { keypair: { name: 'imp', public_key: pub } });
    assert.equal(imported.body.keypair.fingerprint, made.body.keypair.fingerprint);
    assert.equal(imported.body.keypair.private_key, undefined);
    assert.equal(
      (await nova('POST', '/os-keypairs', { keypair: { name: 'imp', public_key: pub } })).status,
      409,
    );
    const junk = await nova('POST', '/os-keypairs', {
      keypair: { name: 'junk', public_key: 'ssh-rsa not-base64!' },
    });
    assert.equal(junk.status, 400);
    assert.deepEqual(
      (await nova('GET', '/os-keypairs')).body.keypairs.map((k: any) => k.keypair.name),
      ['gen', 'imp'],
    );
    // keypairs are the user's: the admin does not see them
    assert.deepEqual((await nova('GET', '/os-keypairs', undefined, adminToken)).body.keypairs, []);
    assert.equal((await nova('DELETE', '/os-keypairs/gen')).status, 202);
    assert.equal((await nova('DELETE', '/os-keypairs/gen')).status, 404);
  });

  test('limits, quota sets, availability zones; hypervisors only for the admin', async () => {
    const limits = (await nova('GET', '/limits')).body.limits.absolute;
    assert.equal(limits.maxTotalInstances, 20);
    assert.ok(limits.totalInstancesUsed >= 1);
    const project = (await keystoneToken(base)).body.token.project.id;
    const quota = await nova('GET', `/os-quota-sets/${project}`);
    assert.equal(quota.body.quota_set.instances, 20);
    const zones = await nova('GET', '/os-availability-zone');
    assert.deepEqual(
      zones.body.availabilityZoneInfo.map((z: any) => z.zoneName),
      ['osapi-zone'],
    );
    assert.equal((await nova('GET', '/os-hypervisors')).status, 403);
    const hv = await nova('GET', '/os-hypervisors/detail', undefined, adminToken);
    assert.equal(hv.body.hypervisors.length, 2);
    assert.equal(hv.body.hypervisors[0].state, 'up');
  });
});

describe('images (Glance v2)', () => {
  test('create is queued; upload makes it active with the data’s size and checksum', async () => {
    const made = await glance('POST', '/images', {
      name: 'up',
      disk_format: 'raw',
      container_format: 'bare',
      os_distro: 'debian',
    });
    assert.equal(made.status, 201);
    assert.equal(made.body.status, 'queued');
    const id = made.body.id;
    const data = Buffer.alloc(1024 * 1024, 1);
    const put = await fetch(`${base}/image/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: data,
    });
    assert.equal(put.status, 204);
    const active = await until(
      () => glance('GET', `/images/${id}`),
      (r) => r.body.status !== 'saving' && r.body.status !== 'queued',
    );
    assert.equal(active.body.status, 'active');
    assert.equal(active.body.size, data.length);
    assert.equal(active.body.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(active.body.os_distro, 'debian');
    const again = await fetch(`${base}/image/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: data,
    });
    assert.equal(again.status, 409);
  });

  test('refusals: a tenant may not publish; a bad disk format names the field; unknown ids are 404', async () => {
    const pub = await glance('POST', '/images', { name: 'p', disk_format: 'raw', visibility: 'public' });
    assert.equal(pub.status, 403);
    const fmt = await glance('POST', '/images', { name: 'v', disk_format: 'vmdk' });
    assert.equal(fmt.status, 400);
    assert.match(fmt.body.message, /disk_format/);
    assert.equal((await glance('GET', '/images/01a00000-0000-7000-8000-000000000000')).status, 404);
    assert.equal((await glance('DELETE', `/images/${n.env.image}`)).status, 403);
  });
});
