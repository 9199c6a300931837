/**
 * A backup storage of type `agent` (docs/hosts.md) through the public API: it is added with its
 * agent's secret (wrong one refused and rolled back; the secret never shown), reports the real
 * capacity of its directory, really downloads an image (the file on it has the source's bytes,
 * the image its real sizes), and a VM on a real host boots from it: the host copies the image
 * straight from the storage's GET /v1/images/<uuid> with the storage's secret.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureGuestImage } from '../support/guest-image.js';
import { startTestNode, type TestNode } from '../support/node.js';
import { serveBackupStorage } from './support/backup-storage-agent.js';
import {
  addHost,
  buildCloud,
  type Cloud,
  flatVxlanL3,
  guestImageUrl,
  nicOf,
  ok,
  serveFile,
  waitSerial,
} from './support/cloud.js';
import { KvmLab, type LabHost, skipReason } from './support/kvm-lab.js';

const skip = skipReason();
const BS_SECRET = 'backup-storage-secret-0123456789abcdef';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('agent backup storage', { skip }, () => {
  let lab: KvmLab;
  let t: TestNode;
  let cloud: Cloud;
  let h1: LabHost;
  let bsUrl = '';
  let bsDir = '';
  let bs = '';
  let image = '';
  const closers: Array<() => void> = [];

  before(async () => {
    lab = new KvmLab();
    h1 = lab.addHost();
    await h1.startAgent();
    t = await startTestNode();
    const served = await guestImageUrl(lab);
    closers.push(() => served.server.close());
    cloud = await buildCloud(t, lab, served.url);
    assert.equal((await addHost(t, cloud, h1, lab.secret)).state, 'Succeeded');
    bsDir = lab.subdir('bs');
    const storage = await serveBackupStorage({ dir: bsDir, secret: BS_SECRET, host: lab.rootIp });
    closers.push(() => storage.server.close());
    bsUrl = storage.url;
  });

  after(async () => {
    for (const c of closers) c();
    await t?.stop().catch(() => {});
    await lab?.destroy();
  });

  test('a wrong secret is refused by the storage and the record rolled back', async () => {
    const job = await t.admin.job('POST', '/v1/backup-storages', {
      name: `bs-wrong-${lab.tag}`,
      type: 'agent',
      url: bsUrl,
      agentSecret: 'not-the-secret-of-this-storage',
    });
    assert.equal(job.state, 'Failed');
    assert.equal(job.error.code, 'HOST_AGENT_SECRET_REJECTED', JSON.stringify(job.error));
    assert.equal((await t.admin.get(`/v1/backup-storages?q=name=bs-wrong-${lab.tag}`)).body.items.length, 0);
  });

  test('added with its secret: the real capacity of its directory; the secret is never shown', async () => {
    const job = await ok(t.admin, 'POST', '/v1/backup-storages', {
      name: `bs-${lab.tag}`,
      type: 'agent',
      url: bsUrl,
      agentSecret: BS_SECRET,
    });
    bs = job.resourceUuid;
    const got = (await t.admin.get(`/v1/backup-storages/${bs}`)).body;
    assert.equal(got.status, 'Connected');
    assert.ok(got.capacityTotal > 0);
    const everything = JSON.stringify([got, (await t.admin.get(`/v1/jobs/${job.uuid}`)).body]);
    assert.ok(!everything.includes(BS_SECRET));
    await ok(t.admin, 'POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: cloud.zone });
  });

  test('an image is really downloaded onto it: same bytes, real sizes', async () => {
    const guest = await ensureGuestImage();
    const src = await serveFile(lab, guest.disk);
    closers.push(() => src.server.close());
    const job = await ok(t.admin, 'POST', '/v1/images', {
      name: `bs-image-${lab.tag}`,
      url: src.url,
      format: 'qcow2',
      backupStorageUuid: bs,
      isPublic: true,
    });
    image = job.resourceUuid;
    const img = (await t.admin.get(`/v1/images/${image}`)).body;
    assert.equal(img.state, 'Ready');
    assert.equal(img.actualSize, statSync(guest.disk).size);
    assert.ok(img.size >= img.actualSize);
    const stored = readdirSync(bsDir, { recursive: true, withFileTypes: true }).find(
      (e) => e.isFile() && e.name.includes(image),
    );
    assert.ok(stored, `the image file is in ${bsDir}`);
    assert.equal(sha256(join(stored.parentPath ?? stored.path, stored.name)), sha256(guest.disk));
  });

  test('a VM boots from it: the host copies the image from the storage with its secret', async () => {
    const net = await flatVxlanL3(t, lab, cloud, 7000 + Math.floor(Math.random() * 2000) * 10);
    const job = await ok(t.admin, 'POST', '/v1/vms', {
      name: `bs-vm-${lab.tag}`,
      imageUuid: image,
      instanceOfferingUuid: cloud.offering,
      l3NetworkUuids: [net.l3],
    });
    const lease = await waitSerial(h1, job.resourceUuid, /NIMBUS-DHCP-OK ip=(\S+)/);
    assert.equal(lease[1], (await nicOf(t.admin, job.resourceUuid)).ip);
    await ok(t.admin, 'DELETE', `/v1/vms/${job.resourceUuid}`);
    await ok(t.admin, 'POST', `/v1/vms/${job.resourceUuid}/actions/expunge`, {});
  });
});
