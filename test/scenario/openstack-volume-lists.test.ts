/**
 * Cinder lists, errors and tenants through the façade: limit/marker paging with next links,
 * summary and detail lists, status and name filters, faults in Cinder's shape naming the bad
 * field (nothing made), the path's project held to the token's, and one project never seeing
 * or touching another's volumes and snapshots.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestNode, type TestNode } from '../support/node.js';
import { allPages, OsClient } from './openstack-fixtures.js';
import { tenant } from './router-fixtures.js';
import { buildVmEnv, GiB } from './vm-env.js';

let t: TestNode;
let alice: OsClient;
let bob: OsClient;
let aliceUuid: string;
let bobUuid: string;
let aliceBase: string;

before(async () => {
  t = await startTestNode();
  await buildVmEnv(t, { prefix: 'osvl', storage: 'nfs', hostCpu: 16, hostMemory: 32 * GiB });
  const a = await tenant(t, 'osvl-alice');
  const b = await tenant(t, 'osvl-bob');
  alice = OsClient.of(a.api);
  bob = OsClient.of(b.api);
  aliceUuid = a.uuid;
  bobUuid = b.uuid;
  aliceBase = `/volume/v3/${aliceUuid}`;
});
after(() => t.stop());

async function available(c: OsClient, base: string, id: string) {
  for (let i = 0; i < 600; i++) {
    if ((await c.get(`${base}/volumes/${id}`)).body.volume.status === 'available') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`volume ${id} never became available`);
}

test('paging and filters: limit/marker with next links, summary and detail, status and name', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++)
    ids.push(
      (await alice.expect(202, 'POST', `${aliceBase}/volumes`, { volume: { size: 1, name: `pv-${i}` } })).body
        .volume.id,
    );
  for (const id of ids) await available(alice, aliceBase, id);

  const { seen, pages } = await allPages(alice, `${aliceBase}/volumes/detail?limit=2`, 'volumes', 2);
  assert.deepEqual(
    seen.map((v) => v.id),
    [...ids].sort(),
  );
  assert.deepEqual(
    pages.map((p) => p.body.volumes.length),
    [2, 2, 1],
  );
  assert.equal(pages[2]!.body.volumes_links, undefined, 'the last page has no next link');
  const summary = (await alice.get(`${aliceBase}/volumes`)).body.volumes[0];
  assert.deepEqual(Object.keys(summary).sort(), ['id', 'links', 'name']);
  const detail = (await alice.get(`${aliceBase}/volumes/detail?name=pv-3`)).body.volumes;
  assert.deepEqual(
    detail.map((v: { id: string }) => v.id),
    [ids[3]],
  );
  assert.equal(detail[0].status, 'available');
  assert.equal((await alice.get(`${aliceBase}/volumes/detail?status=available`)).body.volumes.length, 5);
  assert.equal((await alice.get(`${aliceBase}/volumes/detail?status=in-use`)).body.volumes.length, 0);
  assert.equal((await alice.get(`${aliceBase}/volumes/detail?status=error`)).body.volumes.length, 0);
  const unknown = await alice.expect(400, 'GET', `${aliceBase}/volumes/detail?colour=red`);
  assert.match(unknown.body.badRequest.message, /^colour: /);
  const badLimit = await alice.expect(400, 'GET', `${aliceBase}/volumes?limit=-1`);
  assert.match(badLimit.body.badRequest.message, /^limit: /);
  const badMarker = await alice.expect(400, 'GET', `${aliceBase}/volumes?marker=${bobUuid}`);
  assert.match(badMarker.body.badRequest.message, /^marker: /);
});

test('faults: Cinder’s shape, the bad field named, nothing made', async () => {
  const count = async () => (await alice.get(`${aliceBase}/volumes`)).body.volumes.length as number;
  const before = await count();
  const noSize = await alice.expect(400, 'POST', `${aliceBase}/volumes`, { volume: { name: 'x' } });
  assert.deepEqual(Object.keys(noSize.body), ['badRequest']);
  assert.equal(noSize.body.badRequest.code, 400);
  assert.match(noSize.body.badRequest.message, /size/);
  const zero = await alice.expect(400, 'POST', `${aliceBase}/volumes`, { volume: { size: 0 } });
  assert.match(zero.body.badRequest.message, /size/);
  const fromImage = await alice.expect(400, 'POST', `${aliceBase}/volumes`, {
    volume: { size: 1, imageRef: aliceUuid },
  });
  assert.match(fromImage.body.badRequest.message, /imageRef/);
  const badAction = await alice.expect(400, 'POST', `${aliceBase}/volumes/${aliceUuid}/action`, {
    'os-frobnicate': {},
  });
  assert.match(badAction.body.badRequest.message, /os-frobnicate/);
  assert.equal(await count(), before, 'no volume was made');
  const missing = await alice.expect(404, 'GET', `${aliceBase}/volumes/${aliceUuid}`);
  assert.equal(missing.body.itemNotFound.code, 404);
  const noToken = await new OsClient(t.url, undefined).call('GET', `${aliceBase}/volumes`);
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.unauthorized.code, 401);
  const badVersion = await alice.call('GET', `${aliceBase}/volumes`, undefined, {
    'openstack-api-version': 'volume three',
  });
  assert.equal(badVersion.status, 400);
  // version discovery needs no token
  const versions = await new OsClient(t.url, undefined).call('GET', '/volume/');
  assert.equal(versions.status, 300); // Multiple Choices, as Cinder's root answers
  assert.equal(versions.body.versions[0].id, 'v3.0');
  assert.equal(versions.body.versions[0].version, '3.27');
});

test("tenants: the path's project is the token's; another project's volumes are not there", async () => {
  const vol = (await alice.expect(202, 'POST', `${aliceBase}/volumes`, { volume: { size: 1, name: 'hers' } }))
    .body.volume;
  await available(alice, aliceBase, vol.id);
  const snap = (
    await alice.expect(202, 'POST', `${aliceBase}/snapshots`, { snapshot: { volume_id: vol.id } })
  ).body.snapshot;
  const bobBase = `/volume/v3/${bobUuid}`;
  // bob naming alice's project is refused; in his own he does not see her volume
  const foreign = await bob.expect(403, 'GET', `${aliceBase}/volumes`);
  assert.equal(foreign.body.forbidden.code, 403);
  const his = (await bob.get(`${bobBase}/volumes/detail`)).body.volumes.map((v: { id: string }) => v.id);
  assert.ok(!his.includes(vol.id));
  await bob.expect(404, 'GET', `${bobBase}/volumes/${vol.id}`);
  await bob.expect(404, 'DELETE', `${bobBase}/volumes/${vol.id}`);
  await bob.expect(404, 'POST', `${bobBase}/volumes/${vol.id}/action`, { 'os-extend': { new_size: 5 } });
  await bob.expect(404, 'GET', `${bobBase}/snapshots/${snap.id}`);
  const theirs = await bob.expect(400, 'POST', `${bobBase}/snapshots`, { snapshot: { volume_id: vol.id } });
  assert.match(theirs.body.badRequest.message, /snapshot.volume_id: no volume/);
  // a project id without dashes (Keystone's spelling) is the same project
  const undashed = `/volume/v3/${aliceUuid.replace(/-/g, '')}`;
  assert.equal((await alice.get(`${undashed}/volumes/${vol.id}`)).body.volume.size, 1);
  // the admin sees every project's volumes with all_tenants, else its own project's
  const admin = OsClient.of(t.admin);
  const adminProject = (
    await t.db.db.selectFrom('accounts').select('uuid').where('type', '=', 'admin').executeTakeFirstOrThrow()
  ).uuid;
  const own = (await admin.get(`/volume/v3/${adminProject}/volumes`)).body.volumes.map(
    (v: { id: string }) => v.id,
  );
  assert.ok(!own.includes(vol.id));
  const all = (await admin.get(`/volume/v3/${adminProject}/volumes/detail?all_tenants=1`)).body.volumes;
  const hers = all.find((v: { id: string }) => v.id === vol.id);
  assert.equal(hers['os-vol-tenant-attr:tenant_id'], aliceUuid);
  // nothing of hers changed
  assert.equal((await alice.get(`${aliceBase}/volumes/${vol.id}`)).body.volume.size, 1);
});
