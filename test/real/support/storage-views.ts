/**
 * Test-only: what the shared-storage test reads of a storage and of the hosts, whichever kind the
 * storage is — its contents (files of the NFS export, RBD images of the pool), where a volume and
 * its backing live, its snapshots and their bytes, what QEMU's disk options must say — and the
 * disk files a host keeps (none, on shared storage).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LabHost } from './kvm-lab.js';
import { sh } from './kvm-lab.js';
import { type CephCluster, filesOnExport, type NfsServer, rbdImages } from './storage-servers.js';

/** What the test knows of the storage it made, whichever kind it is. */
export interface Storage {
  url: string;
  /** what is on the storage: files of the export, or RBD images of the pool */
  contents(): string[];
  /** where a volume lives on it (a file of the export, or an RBD image) */
  volumeThere(volumeUuid: string): string | undefined;
  /** the root volume's backing, as the storage records it (a cached image of this storage) */
  backingOf(volumeUuid: string): string;
  /** the named snapshots of a volume, read on the storage */
  snapshotsOf(volumeUuid: string): string[];
  /** exports a snapshot's bytes to a raw file of this machine */
  exportSnapshot(volumeUuid: string, snapshotUuid: string, to: string): void;
  /** what QEMU's disk options must say: the blockdev driver (and, for ceph, the url's cephx user) */
  qemuMarks: string[];
  /** ceph: does the cluster refuse a client without a key (cephx really on)? */
  refusesStranger?: () => boolean;
}

export function nfsStorage(nfs: NfsServer): Storage {
  const fileOf = (uuid: string) =>
    filesOnExport(nfs).find((f) => f.startsWith('volumes/') && f.includes(uuid));
  return {
    url: nfs.url,
    qemuMarks: ['"driver":"nfs"'],
    contents: () => filesOnExport(nfs),
    volumeThere: fileOf,
    backingOf(uuid) {
      const info = JSON.parse(
        sh('qemu-img', ['info', '-U', '--output=json', join(nfs.exportDir, fileOf(uuid) ?? '')]),
      ) as { 'backing-filename'?: string };
      return info['backing-filename'] ?? '';
    },
    snapshotsOf(uuid) {
      const info = JSON.parse(
        sh('qemu-img', ['info', '-U', '--output=json', join(nfs.exportDir, fileOf(uuid) ?? '')]),
      ) as { snapshots?: Array<{ name: string }> };
      return (info.snapshots ?? []).map((s) => s.name);
    },
    exportSnapshot(uuid, snap, to) {
      // the file is read from the export's directory; its backing file (the cached image) is
      // opened over nfs:// from this namespace, which is on the underlay too
      sh('qemu-img', [
        'convert',
        '-U',
        '-f',
        'qcow2',
        '-l',
        `snapshot.name=${snap}`,
        '-O',
        'raw',
        join(nfs.exportDir, fileOf(uuid) ?? ''),
        to,
      ]);
    },
  };
}

export function cephStorage(ceph: CephCluster): Storage {
  return {
    url: ceph.url,
    qemuMarks: ['"driver":"rbd"', '"user":"nimbus"'],
    refusesStranger: () =>
      spawnSync('rbd', ['--conf', ceph.conf, '--id', 'stranger', 'ls', ceph.pool], { timeout: 30_000 })
        .status !== 0,
    contents: () => rbdImages(ceph),
    volumeThere: (uuid) => rbdImages(ceph).find((i) => i === `vol-${uuid}`),
    backingOf(uuid) {
      const info = JSON.parse(ceph.rbd(['info', '--format', 'json', `${ceph.pool}/vol-${uuid}`])) as {
        parent?: { image: string; snapshot: string };
      };
      return info.parent ? `${info.parent.image}@${info.parent.snapshot}` : '';
    },
    snapshotsOf: (uuid) =>
      (
        JSON.parse(ceph.rbd(['snap', 'ls', '--format', 'json', `${ceph.pool}/vol-${uuid}`])) as Array<{
          name: string;
        }>
      ).map((s) => s.name),
    exportSnapshot(uuid, snap, to) {
      ceph.rbd(['export', '--no-progress', `${ceph.pool}/vol-${uuid}@${snap}`, to]);
    },
  };
}

/** disk image files a host keeps in its state directory (none, on shared storage) */
export function diskFilesOf(host: LabHost): string[] {
  const walk = (d: string): string[] =>
    existsSync(d)
      ? readdirSync(d).flatMap((n) => {
          const p = join(d, n);
          return statSync(p).isDirectory() ? walk(p) : /\.(qcow2|raw|img)$/.test(n) ? [p] : [];
        })
      : [];
  return walk(host.stateDir);
}
