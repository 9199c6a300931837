/**
 * Test-only: VMs on shared primary storage (NFS or Ceph), through the public API only, on two
 * real agent hosts (kvm-lab.ts). The storage server runs on the lab's underlay
 * (storage-servers.ts); the test reads what really landed on it (the exported directory, the
 * RBD pool) and what the hosts run (QEMU command lines, state directories).
 *
 *   primary storage created with its url and attached to the kvm cluster
 *   → a VM on it on each host boots (serial markers, its allocated DHCP address, ping); both
 *     root disks are thin clones of ONE copy of the image cached on the storage, opened by QEMU
 *     over nfs:// / rbd (ceph: as the url's cephx user), with no disk file on the hosts
 *   → a data volume made there and attached live: the guest sees vdb
 *   → live migration of VM 1 to host 2 (shared storage: no disk copied) while it answers pings
 *   → a live snapshot of its root volume holds the disk's bytes (read back from the storage)
 *   → stop, destroy, expunge, clean the image cache, detach, delete: nothing left on the storage,
 *     no QEMU, TAP, namespace, nft rule or definition on the hosts
 * At most two guests run at once (three QEMUs during the migration).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureGuestImage } from '../../support/guest-image.js';
import { startTestNode, type TestNode } from '../../support/node.js';
import {
  addHost,
  buildCloud,
  type Cloud,
  flatVxlanL3,
  GiB,
  guestImageUrl,
  MiB,
  nicOf,
  ok,
  vmOf,
  waitSerial,
} from './cloud.js';
import { KvmLab, type LabHost, skipReason, waitFor } from './kvm-lab.js';
import { attachProbe, detachProbe, leftovers, pingFor, pingOk } from './probe.js';
import { startCeph, startNfsServer, storageSkipReason } from './storage-servers.js';
import { cephStorage, diskFilesOf, nfsStorage, type Storage } from './storage-views.js';

type Kind = 'nfs' | 'ceph';

export function sharedStorageVms(kind: Kind, opts: { vni: number }): void {
  const skip = skipReason() || storageSkipReason(kind);
  if (skip) console.log(`# ${kind} storage VMs skipped: ${skip}`);

  describe(`a VM on ${kind} primary storage, through the API, on two real hosts`, { skip }, () => {
    let lab: KvmLab;
    let t: TestNode;
    let cloud: Cloud;
    let h1: LabHost;
    let h2: LabHost;
    let storage: Storage;
    let ps = '';
    let net: Awaited<ReturnType<typeof flatVxlanL3>>;
    let closeImage: () => void = () => {};
    let vm = '';
    let vm2 = '';
    let rootVolume = '';
    let dataVolume = '';
    let probe = '';
    const timings: Record<string, number> = {};
    const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const start = Date.now();
      try {
        return await fn();
      } finally {
        timings[what] = (Date.now() - start) / 1000;
      }
    };

    before(async () => {
      process.env.NIMBUS_SETTINGS = JSON.stringify({ reconcileIntervalSeconds: 2, stopTimeoutSeconds: 20 });
      lab = new KvmLab();
      h1 = lab.addHost();
      h2 = lab.addHost();
      await h1.startAgent();
      await h2.startAgent();
      storage = await timed(`start the ${kind} server`, async () =>
        kind === 'nfs' ? nfsStorage(await startNfsServer(lab)) : cephStorage(await startCeph(lab)),
      );
      t = await startTestNode();
      const image = await guestImageUrl(lab);
      closeImage = () => image.server.close();
      cloud = await buildCloud(t, lab, image.url);
      for (const h of [h1, h2]) {
        const job = await addHost(t, cloud, h, lab.secret);
        assert.equal(job.state, 'Succeeded', JSON.stringify(job.error));
      }
      net = await flatVxlanL3(t, lab, cloud, opts.vni);
    });

    after(async () => {
      console.log(`# ${kind} timings (s): ${JSON.stringify(timings)}`);
      closeImage();
      await t?.stop().catch(() => {});
      await lab?.destroy();
      delete process.env.NIMBUS_SETTINGS;
    });

    test(`a ${kind} primary storage is created with its url and attached to the kvm cluster`, async () => {
      const job = await ok(t.admin, 'POST', '/v1/primary-storages', {
        name: `${kind}-${lab.tag}`,
        zoneUuid: cloud.zone,
        type: kind,
        url: storage.url,
        capacity: 20 * GiB,
      });
      ps = job.resourceUuid;
      await ok(t.admin, 'POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, {
        clusterUuid: cloud.cluster,
      });
      const got = (await t.admin.get(`/v1/primary-storages/${ps}`)).body;
      assert.equal(got.type, kind);
      assert.equal(got.url, storage.url);
      assert.deepEqual(got.clusterUuids, [cloud.cluster]);
      // the key stays on the hosts (the keyring ceph.conf names): a client without one cannot
      // connect (with auth none it could, so this shows cephx is on)
      if (storage.refusesStranger) assert.ok(storage.refusesStranger(), 'cephx is required');
    });

    test(`two VMs on it, one per host, boot with their allocated addresses from one cached image on the ${kind} storage`, async () => {
      const create = (name: string, host: LabHost) =>
        ok(t.admin, 'POST', '/v1/vms', {
          name: `${name}-${kind}-${lab.tag}`,
          imageUuid: cloud.image,
          instanceOfferingUuid: cloud.offering,
          l3NetworkUuids: [net.l3],
          hostUuid: cloud.hosts.get(host),
          primaryStorageUuid: ps,
        });
      vm = (await timed('create VM 1 → Running (image copied to the storage)', () => create('vm1', h1)))
        .resourceUuid;
      vm2 = (await timed('create VM 2 → Running (cached image reused)', () => create('vm2', h2)))
        .resourceUuid;
      for (const [uuid, host] of [
        [vm, h1],
        [vm2, h2],
      ] as const) {
        assert.equal((await vmOf(t.admin, uuid)).state, 'Running');
        const nic = await nicOf(t.admin, uuid);
        const lease = await timed(`Running → guest DHCP lease (${uuid === vm ? 'VM 1' : 'VM 2'})`, () =>
          waitSerial(host, uuid, /NIMBUS-DHCP-OK ip=(\S+)/),
        );
        assert.equal(lease[1], nic.ip, `the guest's lease is the address Nimbus allocated (${nic.ip})`);
        // QEMU opens the disk over the network, not as a file of the host
        const cmdline = readFileSync(`/proc/${host.qemuPid(uuid)}/cmdline`, 'utf8');
        for (const mark of storage.qemuMarks)
          assert.ok(cmdline.includes(mark), `QEMU's disk options: ${mark}`);
      }
      // the probe stands on host 2's bridge: the VM of host 2 keeps it there all along
      probe = attachProbe(lab, h2, `br_vx_${opts.vni}`, `${net.subnet}.200/24`);
      const ip1 = (await nicOf(t.admin, vm)).ip;
      await waitFor('ping of VM 1 across the VXLAN', () => (pingOk(probe, ip1) ? true : undefined), 60_000);

      const roots = [];
      for (const uuid of [vm, vm2]) {
        const volumes = (await t.admin.get(`/v1/volumes?q=vmUuid=${uuid}`)).body.items;
        roots.push(volumes.find((v: { type: string }) => v.type === 'Root'));
      }
      rootVolume = roots[0].uuid;
      const cached = new Set<string>();
      for (const root of roots) {
        assert.equal(root.primaryStorageUuid, ps);
        assert.ok(root.path.startsWith(kind === 'nfs' ? `${storage.url}/` : 'rbd:rbd/'), root.path);
        assert.ok(storage.volumeThere(root.uuid), `root volume on the storage: ${storage.contents()}`);
        if (kind === 'ceph') assert.equal(root.format, 'raw', 'volumes on RBD are raw');
        // a thin clone of the image cached on this storage (not a full copy)
        const backing = storage.backingOf(root.uuid);
        assert.match(backing, new RegExp(`(imagecache/|img-)${cloud.image}`), `${root.uuid}: ${backing}`);
        cached.add(backing);
      }
      assert.equal(cached.size, 1, 'both clones share one cached copy of the image');
      assert.equal(
        storage.contents().filter((c) => c.includes(cloud.image)).length,
        1,
        `one cached image on the storage: ${storage.contents()}`,
      );
      assert.deepEqual([...diskFilesOf(h1), ...diskFilesOf(h2)], [], 'no disk file on either host');
    });

    test('a data volume made on it and attached live: the guest sees a new disk', async () => {
      const from = h1.serial(vm).length;
      const job = await timed('data volume create + live attach', () =>
        ok(t.admin, 'POST', '/v1/volumes', {
          name: `data-${kind}-${lab.tag}`,
          size: 64 * MiB,
          primaryStorageUuid: ps,
          vmUuid: vm,
          deleteWithVm: true,
        }),
      );
      dataVolume = job.resourceUuid;
      await waitSerial(h1, vm, /NIMBUS-DISKS[^\n]*vdb:131072/, from, 60_000);
      assert.ok(storage.volumeThere(dataVolume), `the data volume is on the storage: ${storage.contents()}`);
      const v = (await t.admin.get(`/v1/volumes/${dataVolume}`)).body;
      assert.equal(v.primaryStorageUuid, ps);
      assert.equal(v.vmUuid, vm);
    });

    test('the VM live-migrates to the other host (no disk copied) and keeps answering', async () => {
      const ip = (await nicOf(t.admin, vm)).ip;
      const paths = (await t.admin.get(`/v1/volumes?q=vmUuid=${vm}`)).body.items.map(
        (v: { path: string }) => v.path,
      );
      const onStorage = storage.contents();
      const pinging = pingFor(probe, ip, 300);
      await timed('live migration', () =>
        ok(t.admin, 'POST', `/v1/vms/${vm}/actions/migrate`, { hostUuid: cloud.hosts.get(h2) }),
      );
      const moved = await vmOf(t.admin, vm);
      assert.equal(moved.hostUuid, cloud.hosts.get(h2));
      assert.equal(moved.state, 'Running');
      assert.ok(h2.qemuPid(vm), 'its QEMU runs on host 2');
      assert.equal(h1.qemuPid(vm), undefined, 'and no longer on host 1');
      await waitFor('ping after the migration', () => (pingOk(probe, ip) ? true : undefined), 30_000);
      const pings = await pinging.stop();
      assert.ok(
        pings.received > 0 && pings.received >= pings.sent - 10,
        `pings during the migration: ${JSON.stringify(pings)}`,
      );
      // shared storage: both hosts opened the same disks; nothing was copied anywhere
      assert.deepEqual(
        (await t.admin.get(`/v1/volumes?q=vmUuid=${vm}`)).body.items.map((v: { path: string }) => v.path),
        paths,
      );
      assert.deepEqual(storage.contents(), onStorage, 'the storage holds the same disks, no copy');
      assert.deepEqual([...diskFilesOf(h1), ...diskFilesOf(h2)], [], 'no disk file on either host');
      const cmdline = readFileSync(`/proc/${h2.qemuPid(vm)}/cmdline`, 'utf8');
      for (const mark of storage.qemuMarks) assert.ok(cmdline.includes(mark), mark);
    });

    test('a live snapshot of the root volume holds the disk’s bytes, read back from the storage', async () => {
      const job = await timed('live snapshot', () =>
        ok(t.admin, 'POST', '/v1/volume-snapshots', {
          name: `snap-${kind}-${lab.tag}`,
          volumeUuid: rootVolume,
        }),
      );
      const snap = (await t.admin.get(`/v1/volume-snapshots/${job.resourceUuid}`)).body;
      assert.equal(snap.state, 'Ready');
      assert.equal(snap.primaryStorageUuid, ps);
      assert.ok(storage.snapshotsOf(rootVolume).includes(snap.uuid), 'the storage has the snapshot');
      const out = join(lab.subdir('snapshot-read'), 'root.raw');
      storage.exportSnapshot(rootVolume, snap.uuid, out);
      const guest = await ensureGuestImage();
      // the root disk is the image grown to the root size: the same bytes, then zeros
      const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', out, guest.disk], {
        encoding: 'utf8',
      });
      assert.equal(cmp.status, 0, `the snapshot's bytes are the guest disk's: ${cmp.stdout}${cmp.stderr}`);
      assert.ok(statSync(out).size >= statSync(guest.disk).size);
      assert.ok(pingOk(probe, (await nicOf(t.admin, vm)).ip), 'the guest still answers');
    });

    test('stop, destroy, expunge and a cache clean-up leave nothing on the storage or the hosts', async () => {
      await timed('stop', () => ok(t.admin, 'POST', `/v1/vms/${vm}/actions/stop`, {}));
      assert.equal(h2.qemuPid(vm), undefined, 'stopped: no QEMU');
      const nics = [await nicOf(t.admin, vm), await nicOf(t.admin, vm2)];
      const volumes: string[] = [];
      for (const uuid of [vm, vm2])
        for (const v of (await t.admin.get(`/v1/volumes?q=vmUuid=${uuid}`)).body.items) volumes.push(v.uuid);
      assert.equal(volumes.length, 3, 'two roots and the data volume');
      detachProbe(lab, h2, probe);
      for (const uuid of [vm, vm2]) {
        await ok(t.admin, 'DELETE', `/v1/vms/${uuid}`);
        await ok(t.admin, 'POST', `/v1/vms/${uuid}/actions/expunge`, {});
      }
      const left = leftovers(lab, [vm, vm2], nics, volumes);
      assert.deepEqual(
        left,
        { qemu: [], taps: [], namespaces: [], dnsmasq: [], nftRules: [], files: [] },
        JSON.stringify(left),
      );
      for (const v of volumes)
        assert.equal(storage.volumeThere(v), undefined, `volume ${v} is gone from the storage`);
      // the cached image stays until the storage's cache is cleaned (other VMs may clone from it)
      assert.ok(storage.contents().length > 0, 'the cached image is still there');
      const cleaned = await ok(t.admin, 'POST', `/v1/primary-storages/${ps}/actions/clean-image-cache`, {});
      assert.deepEqual(cleaned.result, { removed: 1, kept: 0 }, JSON.stringify(cleaned));
      assert.deepEqual(storage.contents(), [], 'nothing is left on the storage');
      await ok(t.admin, 'POST', `/v1/primary-storages/${ps}/actions/detach-cluster`, {
        clusterUuid: cloud.cluster,
      });
      await ok(t.admin, 'DELETE', `/v1/primary-storages/${ps}`);
      assert.equal((await t.admin.get(`/v1/primary-storages/${ps}`)).status, 404);
    });
  });
}
