/**
 * Issue 9, "What must be shown": NFS primary storage runs a VM end to end through the public API
 * on two real agent hosts — nfs-ganesha serves a directory of the lab on the underlay; the VM
 * boots from a volume on it, gets a data volume there, live-migrates without copying a disk, is
 * snapshotted, and leaves nothing behind (support/shared-storage-scenario.ts). Root, QEMU,
 * qemu-block-extra, nfs-ganesha(-vfs) and rpcbind needed; skipped with the reason otherwise.
 * Run alone with `node scripts/test.mjs --real nfs-storage-vms`.
 */
import { sharedStorageVms } from './support/shared-storage-scenario.js';

sharedStorageVms('nfs', { vni: 5000 + Math.floor(Math.random() * 4000) * 10 });
