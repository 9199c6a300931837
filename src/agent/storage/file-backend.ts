/**
 * Primary storage as qcow2 files in a directory tree (layout.ts), on any StorageFs (storage-fs.ts):
 * a directory of this host (`local`; `shared-mount`: the same layout on a filesystem every host of
 * the cluster mounts at the same path) or an NFS export (`nfs`: qemu-img and QEMU open the files as
 * `nfs://` URLs through libnfs; directory work goes through the agent's NFS client).
 *
 * Invariants: a final name (cache, volume, record) only ever holds a complete, checked file — work
 * happens under a `.part` name and is published by rename; a failed command leaves no part behind.
 * Cached images are standalone qcow2 (converted if the source was another format; an image with
 * a backing file is refused: it could point anywhere on the host). Volumes are qcow2 clones of
 * their cached image (the cache must outlive them: image.uncache is the platform's call).
 *
 * Snapshots are internal qcow2 snapshots (`qemu-img snapshot`), not external overlay files,
 * because: the volume stays one file at one path for its whole life (VolumeSpec.path is fixed at
 * creation and a running QEMU has it open); reverting to or deleting any snapshot of the tree is a
 * metadata operation on that file, with no backing chain to rebase or commit; and a running VM
 * can do the same live through QMP (blockdev-snapshot-internal-sync). The cost: a snapshot cannot
 * be moved off the volume's file, and its bytes are only freed when it is deleted.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AgentRequest, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import {
  checkName,
  type StorageBackend,
  type StorageOptions,
  unsupportedFormat,
  volumeNotFound,
} from './backend.js';
import { checkSha256Field, fetchToFile, sha256OfFile } from './fetch-image.js';
import { isPartOf, type Layout, layoutOf, parseSnapshotRecord, partPath } from './layout.js';
import {
  convertArgs,
  createArgs,
  type DiskFormat,
  type ImageInfo,
  imageInfo,
  resizeArgs,
  runTool,
  snapshotArgs,
  snapshotNames,
} from './qemu-img.js';
import { localFs, type StorageFs } from './storage-fs.js';
import { headImage, imageUrl, putImage } from './upload.js';

/** Bytes a local file really occupies (sparse and thin files use less than their length). */
export async function allocatedBytes(path: string): Promise<number> {
  return (await localFs.stat(path))?.allocated ?? 0;
}

/** Refuses an image with a backing file: it could point anywhere on the host that reads it. */
function checkStandalone(info: ImageInfo, url: string): void {
  if (info.backingFilename !== undefined) {
    throw new CloudError(
      'Invalid',
      'IMAGE_HAS_BACKING_FILE',
      `${url} is a ${info.format} image backed by ${info.backingFilename}: an image must be standalone`,
      { details: { url, backingFilename: info.backingFilename } },
    );
  }
}

/** Checks a freshly fetched local image and publishes it at local `finalPath` as a standalone qcow2. */
export async function publishImage(part: string, finalPath: string, url: string): Promise<ImageInfo> {
  const info = await imageInfo(part);
  checkStandalone(info, url);
  if (info.format === 'qcow2') {
    await rename(part, finalPath);
    return info;
  }
  const converted = `${part}.qcow2`;
  try {
    await runTool('qemu-img', convertArgs(part, info.format === 'raw' ? 'raw' : undefined, converted));
    await rename(converted, finalPath);
  } finally {
    await rm(converted, { force: true });
  }
  return { ...info, format: 'qcow2' };
}

/** Removes leftovers of earlier attempts at `finalPath` (a crash mid-copy leaves a `.part`). */
async function removeParts(fs: StorageFs, finalPath: string): Promise<void> {
  const dir = finalPath.slice(0, finalPath.lastIndexOf('/'));
  const names = await fs.list(dir);
  for (const n of names.filter((name) => isPartOf(finalPath, name))) await fs.remove(`${dir}/${n}`);
}

function volumeFormat(format: string, storage: StorageRef): DiskFormat {
  if (format === 'qcow2' || format === 'raw') return format;
  throw unsupportedFormat(format, storage);
}

/** The volume's file and format (a volume is one of the two names); undefined when absent. */
async function findVolume(
  fs: StorageFs,
  layout: Layout,
  volumeUuid: string,
): Promise<{ path: string; format: DiskFormat } | undefined> {
  for (const format of ['qcow2', 'raw'] as const) {
    const path = layout.volume(volumeUuid, format);
    if (await fs.stat(path)) return { path, format };
  }
  return undefined;
}

function inUse(what: string, path: string): CloudError {
  return new CloudError(
    'Conflict',
    'STORAGE_VOLUME_IN_USE',
    `${what}: a running VM holds ${path}, and this agent has no live (QMP) path for it`,
    { details: { path }, retryable: true },
  );
}

const isInUse = (e: unknown) => e instanceof CloudError && e.code === 'STORAGE_VOLUME_IN_USE';

async function readRecord(fs: StorageFs, layout: Layout, snapshotUuid: string) {
  const text = await fs.readText(layout.snapshotRecord(snapshotUuid));
  return text === undefined ? undefined : parseSnapshotRecord(text);
}

/** How a storage type's root is reached: its layout and a filesystem session for one command. */
export type StorageAccess = (storage: StorageRef) => { layout: Layout; fs: StorageFs };

/** `local` and `shared-mount`: the url is an absolute directory of this host. */
export const localAccess: StorageAccess = (storage) => {
  if (!storage.url.startsWith('/')) {
    throw new CloudError(
      'Invalid',
      'STORAGE_URL_INVALID',
      `${storage.type} primary storage ${storage.uuid}: url must be an absolute directory, got ${storage.url}`,
      { details: { field: 'storage.url', value: storage.url } },
    );
  }
  return { layout: layoutOf(storage.url), fs: localFs };
};

export function fileBackend(opts: StorageOptions, access: StorageAccess): StorageBackend {
  const credential = (url: string) => opts.credentialFor?.(url);
  const scratchDir = opts.scratchDir ?? tmpdir();

  /** Runs one command with its storage's filesystem session, closed afterwards. */
  const using =
    <R, Q extends { storage: StorageRef }>(fn: (req: Q, layout: Layout, fs: StorageFs) => Promise<R>) =>
    async (req: Q): Promise<R> => {
      const { layout, fs } = access(req.storage);
      try {
        return await fn(req, layout, fs);
      } finally {
        fs.close();
      }
    };

  /** A local file for work on a storage that is not a local directory (removed by the caller). */
  async function scratch(name: string): Promise<string> {
    await mkdir(scratchDir, { recursive: true });
    return partPath(`${scratchDir}/${name}`);
  }

  async function cache(req: AgentRequest<'image.cache'>, layout: Layout, fs: StorageFs) {
    const path = layout.cache(checkName(req.imageUuid, 'imageUuid'));
    const sha256 = checkSha256Field(req.sha256, 'sha256');
    if (await fs.stat(path)) return { path, size: (await imageInfo(path, 'qcow2')).virtualSize };
    await fs.mkdirs(layout.imageCacheDir);
    await removeParts(fs, path);
    // a local directory takes the download in place; elsewhere it lands here and is copied over
    const download = fs.localDir ? partPath(path) : await scratch(`${req.imageUuid}.qcow2`);
    const part = partPath(path, '.qcow2');
    try {
      // the management node sends the backup storage's credential; the agent's own is the fallback
      const auth = req.authorization ?? credential(req.url);
      await fetchToFile(req.url, download, {
        ...(auth ? { authorization: auth } : {}),
        ...(sha256 ? { sha256 } : {}),
      });
      if (fs.localDir) return { path, size: (await publishImage(download, path, req.url)).virtualSize };
      const info = await imageInfo(download);
      checkStandalone(info, req.url);
      await runTool('qemu-img', convertArgs(download, info.format === 'raw' ? 'raw' : undefined, part));
      await fs.rename(part, path);
      return { path, size: info.virtualSize };
    } finally {
      await rm(download, { force: true });
      if (fs.localDir) await rm(`${download}.qcow2`, { force: true });
      else await fs.remove(part);
    }
  }

  async function createVolume(req: AgentRequest<'volume.create'>, layout: Layout, fs: StorageFs) {
    const format = volumeFormat(req.format, req.storage);
    const path = layout.volume(checkName(req.volumeUuid, 'volumeUuid'), format);
    const backing = req.fromImageCachePath;
    if (backing !== undefined) {
      if (format !== 'qcow2') throw unsupportedFormat(`${format} clone`, req.storage);
      if (!backing.startsWith(`${layout.imageCacheDir}/`)) {
        throw new CloudError(
          'Invalid',
          'VOLUME_BACKING_INVALID',
          `fromImageCachePath ${backing} is not in the image cache of primary storage ${req.storage.uuid}`,
          { details: { field: 'fromImageCachePath', value: backing } },
        );
      }
    }
    const existing = await fs.stat(path);
    if (existing) {
      const info = await imageInfo(path, format);
      if (info.virtualSize !== req.size || info.backingFilename !== backing) {
        throw new CloudError(
          'Conflict',
          'VOLUME_EXISTS_DIFFERENT',
          `volume ${req.volumeUuid} exists at ${path} with size ${info.virtualSize} and backing ${info.backingFilename ?? 'none'}`,
          { details: { path, size: info.virtualSize, backing: info.backingFilename ?? null } },
        );
      }
      return { path, actualSize: existing.allocated };
    }
    if (backing !== undefined) {
      const base = await imageInfo(backing, 'qcow2').catch((e: unknown) => {
        throw new CloudError('NotFound', 'IMAGE_CACHE_MISSING', `cached image ${backing} cannot be read`, {
          details: { fromImageCachePath: backing },
          cause: e,
        });
      });
      if (req.size < base.virtualSize) {
        throw new CloudError(
          'Invalid',
          'VOLUME_SMALLER_THAN_IMAGE',
          `size ${req.size} is smaller than the image's virtual size ${base.virtualSize}`,
          { details: { field: 'size', size: req.size, imageSize: base.virtualSize } },
        );
      }
    }
    await fs.mkdirs(layout.volumesDir);
    await removeParts(fs, path);
    const part = partPath(path);
    try {
      await runTool('qemu-img', createArgs(part, format, req.size, backing));
      await fs.rename(part, path);
    } finally {
      await fs.remove(part);
    }
    return { path, actualSize: (await fs.stat(path))?.allocated ?? 0 };
  }

  async function deleteVolume(req: AgentRequest<'volume.delete'>, layout: Layout, fs: StorageFs) {
    const uuid = checkName(req.volumeUuid, 'volumeUuid');
    // its snapshots live inside its file: their records go with it
    for (const name of (await fs.list(layout.snapshotsDir)).filter((n) => n.endsWith('.json'))) {
      const rec = await readRecord(fs, layout, name.slice(0, -'.json'.length)).catch(() => undefined);
      if (rec?.volumeUuid === uuid) await fs.remove(`${layout.snapshotsDir}/${name}`);
    }
    for (const format of ['qcow2', 'raw'] as const) await fs.remove(layout.volume(uuid, format));
    return {};
  }

  async function resizeVolume(req: AgentRequest<'volume.resize'>, layout: Layout, fs: StorageFs) {
    const found = await findVolume(fs, layout, checkName(req.volumeUuid, 'volumeUuid'));
    if (!found) throw volumeNotFound(req.volumeUuid, req.storage);
    const info = await imageInfo(found.path, found.format);
    if (req.size === info.virtualSize) return {};
    if (req.size < info.virtualSize) {
      throw new CloudError(
        'Invalid',
        'VOLUME_SHRINK_REFUSED',
        `volume ${req.volumeUuid} is ${info.virtualSize} bytes: it can only grow`,
        { details: { field: 'size', size: req.size, current: info.virtualSize } },
      );
    }
    try {
      await runTool('qemu-img', resizeArgs(found.path, found.format, req.size));
    } catch (e) {
      if (!isInUse(e)) throw e;
      // a running VM holds the disk: QEMU grows it (block_resize), through the hook, or through
      // vm.resize-volume, which the resize flow sends next for a volume of a running VM
      if (opts.live) await opts.live.resize(found.path, req.size);
    }
    return {};
  }

  async function createSnapshot(req: AgentRequest<'snapshot.create'>, layout: Layout, fs: StorageFs) {
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const found = await findVolume(fs, layout, checkName(req.volumeUuid, 'volumeUuid'));
    if (!found) throw volumeNotFound(req.volumeUuid, req.storage);
    if (found.format !== 'qcow2') throw unsupportedFormat('snapshots of a raw', req.storage);
    const record = layout.snapshotRecord(name);
    // the record first: a crash after it leaves a record snapshot.delete can clean, never an
    // internal snapshot nobody can find
    await fs.mkdirs(layout.snapshotsDir);
    await fs.writeText(record, JSON.stringify({ volumeUuid: req.volumeUuid, volumePath: found.path }));
    if (!(await snapshotNames(found.path)).includes(name)) {
      try {
        await runTool('qemu-img', snapshotArgs('create', found.path, name));
      } catch (e) {
        if (!isInUse(e)) throw e;
        if (!(await opts.live?.snapshotCreate(found.path, name))) throw inUse('snapshot.create', found.path);
      }
    }
    // what the snapshot pins: the volume's allocated data when it was taken
    return { size: (await fs.stat(found.path))?.allocated ?? 0, path: record };
  }

  async function deleteSnapshot(req: AgentRequest<'snapshot.delete'>, layout: Layout, fs: StorageFs) {
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const rec = await readRecord(fs, layout, name);
    if (rec && (await fs.stat(rec.volumePath)) && (await snapshotNames(rec.volumePath)).includes(name)) {
      try {
        await runTool('qemu-img', snapshotArgs('delete', rec.volumePath, name));
      } catch (e) {
        if (!isInUse(e)) throw e;
        if (!(await opts.live?.snapshotDelete(rec.volumePath, name))) {
          throw inUse('snapshot.delete', rec.volumePath);
        }
      }
    }
    await fs.remove(layout.snapshotRecord(name));
    return {};
  }

  async function revertSnapshot(req: AgentRequest<'snapshot.revert'>, layout: Layout, fs: StorageFs) {
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const found = await findVolume(fs, layout, checkName(req.volumeUuid, 'volumeUuid'));
    if (!found) throw volumeNotFound(req.volumeUuid, req.storage);
    if (found.format !== 'qcow2' || !(await snapshotNames(found.path)).includes(name)) {
      throw new CloudError(
        'NotFound',
        'SNAPSHOT_NOT_FOUND_ON_STORAGE',
        `volume ${req.volumeUuid} has no snapshot ${name}`,
        { details: { volumeUuid: req.volumeUuid, snapshotUuid: name } },
      );
    }
    // no live path: QEMU cannot revert a disk it runs on (the platform stops the VM first)
    await runTool('qemu-img', snapshotArgs('apply', found.path, name));
    return {};
  }

  async function upload(req: AgentRequest<'image.upload'>, layout: Layout, fs: StorageFs) {
    const imageUuid = checkName(req.imageUuid, 'imageUuid');
    const target = imageUrl(req.backupStorageUrl, imageUuid);
    const auth = req.authorization ?? credential(target.href);
    const there = await headImage(target, auth);
    if (there) return { size: there.size, actualSize: there.actualSize };
    const source = await uploadSource(fs, layout, req.sourcePath);
    let flat: string;
    if (fs.localDir) {
      await mkdir(`${layout.root}/.upload`, { recursive: true });
      flat = partPath(`${layout.root}/.upload/${imageUuid}.qcow2`);
    } else {
      flat = await scratch(`${imageUuid}.qcow2`);
    }
    try {
      await runTool('qemu-img', convertArgs(source.path, source.format, flat, source.snapshot));
      const stored = await putImage(target, flat, await sha256OfFile(flat), auth);
      return { size: stored.size, actualSize: stored.actualSize };
    } finally {
      await rm(flat, { force: true });
    }
  }

  return {
    'image.cache': using(cache),
    'image.uncache': using(async (req: AgentRequest<'image.uncache'>, layout, fs) => {
      // a volume cloned from it still reads through it: the platform uncaches only unused images
      await fs.remove(layout.cache(checkName(req.imageUuid, 'imageUuid')));
      return {};
    }),
    'image.upload': using(upload),
    'volume.create': using(createVolume),
    'volume.delete': using(deleteVolume),
    'volume.resize': using(resizeVolume),
    'snapshot.create': using(createSnapshot),
    'snapshot.delete': using(deleteSnapshot),
    'snapshot.revert': using(revertSnapshot),
  };
}

/** What image.upload reads: a volume's file, or (a snapshot record's path) one internal snapshot. */
async function uploadSource(
  fs: StorageFs,
  layout: Layout,
  sourcePath: string,
): Promise<{ path: string; format: DiskFormat; snapshot?: string }> {
  const inside = (dir: string) =>
    sourcePath.startsWith(`${dir}/`) && !sourcePath.slice(dir.length + 1).includes('/');
  if (inside(layout.snapshotsDir) && sourcePath.endsWith('.json')) {
    const name = sourcePath.slice(layout.snapshotsDir.length + 1, -'.json'.length);
    const rec = await readRecord(fs, layout, name);
    if (!rec) {
      throw new CloudError('NotFound', 'SNAPSHOT_NOT_FOUND_ON_STORAGE', `no snapshot at ${sourcePath}`, {
        details: { sourcePath },
      });
    }
    return { path: rec.volumePath, format: 'qcow2', snapshot: name };
  }
  if (inside(layout.volumesDir) && (await fs.stat(sourcePath))) {
    return { path: sourcePath, format: sourcePath.endsWith('.raw') ? 'raw' : 'qcow2' };
  }
  throw new CloudError(
    'NotFound',
    'UPLOAD_SOURCE_NOT_FOUND',
    `${sourcePath} is neither a volume nor a snapshot of primary storage at ${layout.root}`,
    { details: { field: 'sourcePath', value: sourcePath } },
  );
}
