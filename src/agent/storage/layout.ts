/**
 * Where things live on a file-based primary storage (a directory, or an NFS export reached by URL):
 *
 *   <root>/imagecache/<imageUuid>.qcow2       cached image (always qcow2, no backing file)
 *   <root>/volumes/<volumeUuid>.qcow2|.raw    volume (qcow2: a clone backed by its cached image)
 *   <root>/snapshots/<snapshotUuid>.json      which volume holds the snapshot (internal qcow2 snapshot
 *                                             named <snapshotUuid>), since snapshot.delete names only
 *                                             the snapshot
 *   <dir>/.<name>.<random>.part               work in progress; never a final name
 *
 * Paths are derived from uuids alone, so commands that carry no path (volume.resize, .delete) find
 * their file, and the path an answer reports is the path the next command computes. Pure.
 */
import { randomBytes } from 'node:crypto';
import type { DiskFormat } from './qemu-img.js';

export interface Layout {
  root: string;
  imageCacheDir: string;
  volumesDir: string;
  snapshotsDir: string;
  cache(imageUuid: string): string;
  volume(volumeUuid: string, format: DiskFormat): string;
  snapshotRecord(snapshotUuid: string): string;
}

export function layoutOf(root: string): Layout {
  const base = root.replace(/\/+$/, '');
  const imageCacheDir = `${base}/imagecache`;
  const volumesDir = `${base}/volumes`;
  const snapshotsDir = `${base}/snapshots`;
  return {
    root: base,
    imageCacheDir,
    volumesDir,
    snapshotsDir,
    cache: (imageUuid) => `${imageCacheDir}/${imageUuid}.qcow2`,
    volume: (volumeUuid, format) => `${volumesDir}/${volumeUuid}.${format}`,
    snapshotRecord: (snapshotUuid) => `${snapshotsDir}/${snapshotUuid}.json`,
  };
}

/** A temporary name beside `finalPath` (same directory: the rename that publishes it is atomic). */
export function partPath(finalPath: string, suffix = ''): string {
  const slash = finalPath.lastIndexOf('/');
  const dir = finalPath.slice(0, slash);
  const name = finalPath.slice(slash + 1);
  return `${dir}/.${name}.${randomBytes(4).toString('hex')}.part${suffix}`;
}

/** Does `name` (a file name in the directory of `finalPath`) look like a leftover part of it? */
export function isPartOf(finalPath: string, name: string): boolean {
  const base = finalPath.slice(finalPath.lastIndexOf('/') + 1);
  return name.startsWith(`.${base}.`) && /\.part(\.[a-z0-9]+)?$/.test(name);
}

/** What a snapshot record says (the JSON in snapshots/<uuid>.json). */
export interface SnapshotRecord {
  volumeUuid: string;
  volumePath: string;
}

export function parseSnapshotRecord(text: string): SnapshotRecord {
  const v = JSON.parse(text) as Partial<SnapshotRecord>;
  if (typeof v.volumeUuid !== 'string' || typeof v.volumePath !== 'string') {
    throw new Error('snapshot record lacks volumeUuid/volumePath');
  }
  return { volumeUuid: v.volumeUuid, volumePath: v.volumePath };
}
