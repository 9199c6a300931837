/**
 * Issue 9, "What must be shown": Ceph primary storage runs a VM end to end through the public API
 * on two real agent hosts — a one-monitor, one-OSD cluster (auth none, pool `rbd`) on the lab's
 * underlay; the VM boots from an RBD clone of the cached image, gets a data volume there,
 * live-migrates without copying a disk, is snapshotted, and leaves no RBD image behind
 * (support/shared-storage-scenario.ts). Root, QEMU, qemu-block-extra, ceph-mon, ceph-osd and
 * ceph-common needed; skipped with the reason otherwise. The OSD takes about 1 GB of memory
 * while it runs. Run alone with `node scripts/test.mjs --real ceph-storage-vms`.
 */
import { sharedStorageVms } from './support/shared-storage-scenario.js';

sharedStorageVms('ceph', { vni: 5000 + Math.floor(Math.random() * 4000) * 10 });
