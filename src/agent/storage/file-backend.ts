/**
 * Primary storage in a directory of this host (`local`, and `shared-mount`: the same layout on a
 * filesystem every host of the cluster mounts at the same path). Layout in layout.ts.
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
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { headImage, imageUrl, putImage } from './upload.js';

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Bytes the file really occupies (sparse and thin files use less than their length). */
export async function allocatedBytes(path: string): Promise<number> {
  const s = await stat(path);
  return s.blocks * 512;
}

function layoutFor(storage: StorageRef): Layout {
  if (!storage.url.startsWith('/')) {
    throw new CloudError(
      'Invalid',
      'STORAGE_URL_INVALID',
      `${storage.type} primary storage ${storage.uuid}: url must be an absolute directory, got ${storage.url}`,
      { details: { field: 'storage.url', value: storage.url } },
    );
  }
  return layoutOf(storage.url);
}

/** Removes leftovers of earlier attempts at `finalPath` (a crash mid-copy leaves a `.part`). */
async function removeParts(finalPath: string): Promise<void> {
  const dir = finalPath.slice(0, finalPath.lastIndexOf('/'));
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names.filter((n) => isPartOf(finalPath, n)).map((n) => rm(join(dir, n), { force: true })),
  );
}

/** Checks a freshly fetched image and publishes it at `finalPath` as a standalone qcow2. */
export async function publishImage(part: string, finalPath: string, url: string): Promise<ImageInfo> {
  const info = await imageInfo(part);
  if (info.backingFilename !== undefined) {
    throw new CloudError(
      'Invalid',
      'IMAGE_HAS_BACKING_FILE',
      `${url} is a ${info.format} image backed by ${info.backingFilename}: an image must be standalone`,
      { details: { url, backingFilename: info.backingFilename } },
    );
  }
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

function volumeFormat(format: string, storage: StorageRef): DiskFormat {
  if (format === 'qcow2' || format === 'raw') return format;
  throw unsupportedFormat(format, storage);
}

/** The volume's file and format (a volume is one of the two names); undefined when absent. */
async function findVolume(
  layout: Layout,
  volumeUuid: string,
): Promise<{ path: string; format: DiskFormat } | undefined> {
  for (const format of ['qcow2', 'raw'] as const) {
    const path = layout.volume(volumeUuid, format);
    if (await statOrUndefined(path)) return { path, format };
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

async function readRecord(layout: Layout, snapshotUuid: string) {
  const text = await readFile(layout.snapshotRecord(snapshotUuid), 'utf8').catch(
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    },
  );
  return text === undefined ? undefined : parseSnapshotRecord(text);
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const part = partPath(path);
  try {
    await writeFile(part, text);
    await rename(part, path);
  } finally {
    await rm(part, { force: true });
  }
}

export function fileBackend(opts: StorageOptions): StorageBackend {
  const credential = (url: string) => opts.credentialFor?.(url);

  async function cache(req: AgentRequest<'image.cache'>) {
    const layout = layoutFor(req.storage);
    const path = layout.cache(checkName(req.imageUuid, 'imageUuid'));
    const sha256 = checkSha256Field(req.sha256, 'sha256');
    if (await statOrUndefined(path)) return { path, size: (await imageInfo(path, 'qcow2')).virtualSize };
    await mkdir(layout.imageCacheDir, { recursive: true });
    await removeParts(path);
    const part = partPath(path);
    try {
      const auth = credential(req.url);
      await fetchToFile(req.url, part, {
        ...(auth ? { authorization: auth } : {}),
        ...(sha256 ? { sha256 } : {}),
      });
      const info = await publishImage(part, path, req.url);
      return { path, size: info.virtualSize };
    } finally {
      await rm(part, { force: true });
    }
  }

  async function createVolume(req: AgentRequest<'volume.create'>) {
    const layout = layoutFor(req.storage);
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
    if (await statOrUndefined(path)) {
      const info = await imageInfo(path, format);
      if (info.virtualSize !== req.size || info.backingFilename !== backing) {
        throw new CloudError(
          'Conflict',
          'VOLUME_EXISTS_DIFFERENT',
          `volume ${req.volumeUuid} exists at ${path} with size ${info.virtualSize} and backing ${info.backingFilename ?? 'none'}`,
          { details: { path, size: info.virtualSize, backing: info.backingFilename ?? null } },
        );
      }
      return { path, actualSize: await allocatedBytes(path) };
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
    await mkdir(layout.volumesDir, { recursive: true });
    await removeParts(path);
    const part = partPath(path);
    try {
      await runTool('qemu-img', createArgs(part, format, req.size, backing));
      await rename(part, path);
    } finally {
      await rm(part, { force: true });
    }
    return { path, actualSize: await allocatedBytes(path) };
  }

  async function deleteVolume(req: AgentRequest<'volume.delete'>) {
    const layout = layoutFor(req.storage);
    const uuid = checkName(req.volumeUuid, 'volumeUuid');
    // its snapshots live inside its file: their records go with it
    const records = await readdir(layout.snapshotsDir).catch(() => [] as string[]);
    for (const name of records.filter((n) => n.endsWith('.json'))) {
      const rec = await readRecord(layout, name.slice(0, -'.json'.length)).catch(() => undefined);
      if (rec?.volumeUuid === uuid) await rm(join(layout.snapshotsDir, name), { force: true });
    }
    for (const format of ['qcow2', 'raw'] as const) await rm(layout.volume(uuid, format), { force: true });
    return {};
  }

  async function resizeVolume(req: AgentRequest<'volume.resize'>) {
    const layout = layoutFor(req.storage);
    const found = await findVolume(layout, checkName(req.volumeUuid, 'volumeUuid'));
    if (!found) throw volumeNotFound(req.volumeUuid, req.storage);
    const info = await imageInfo(found.path, found.format);
    if (req.size === info.virtualSize) return {};
    if (req.size < info.virtualSize) {
      throw new CloudError(
        'Invalid',
        'VOLUME_SHRINK_REFUSED',
        `volume ${req.volumeUuid} is ${info.virtualSize} bytes: it can only grow`,
        {
          details: { field: 'size', size: req.size, current: info.virtualSize },
        },
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

  async function createSnapshot(req: AgentRequest<'snapshot.create'>) {
    const layout = layoutFor(req.storage);
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const found = await findVolume(layout, checkName(req.volumeUuid, 'volumeUuid'));
    if (!found) throw volumeNotFound(req.volumeUuid, req.storage);
    if (found.format !== 'qcow2') throw unsupportedFormat('snapshots of a raw', req.storage);
    const record = layout.snapshotRecord(name);
    // the record first: a crash after it leaves a record snapshot.delete can clean, never an
    // internal snapshot nobody can find
    await mkdir(layout.snapshotsDir, { recursive: true });
    await writeAtomically(record, JSON.stringify({ volumeUuid: req.volumeUuid, volumePath: found.path }));
    if (!(await snapshotNames(found.path)).includes(name)) {
      try {
        await runTool('qemu-img', snapshotArgs('create', found.path, name));
      } catch (e) {
        if (!isInUse(e)) throw e;
        if (!(await opts.live?.snapshotCreate(found.path, name))) throw inUse('snapshot.create', found.path);
      }
    }
    // what the snapshot pins: the volume's allocated data when it was taken
    return { size: await allocatedBytes(found.path), path: record };
  }

  async function deleteSnapshot(req: AgentRequest<'snapshot.delete'>) {
    const layout = layoutFor(req.storage);
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const rec = await readRecord(layout, name);
    if (
      rec &&
      (await statOrUndefined(rec.volumePath)) &&
      (await snapshotNames(rec.volumePath)).includes(name)
    ) {
      try {
        await runTool('qemu-img', snapshotArgs('delete', rec.volumePath, name));
      } catch (e) {
        if (!isInUse(e)) throw e;
        if (!(await opts.live?.snapshotDelete(rec.volumePath, name)))
          throw inUse('snapshot.delete', rec.volumePath);
      }
    }
    await rm(layout.snapshotRecord(name), { force: true });
    return {};
  }

  async function revertSnapshot(req: AgentRequest<'snapshot.revert'>) {
    const layout = layoutFor(req.storage);
    const name = checkName(req.snapshotUuid, 'snapshotUuid');
    const found = await findVolume(layout, checkName(req.volumeUuid, 'volumeUuid'));
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

  async function upload(req: AgentRequest<'image.upload'>) {
    const layout = layoutFor(req.storage);
    const imageUuid = checkName(req.imageUuid, 'imageUuid');
    const target = imageUrl(req.backupStorageUrl, imageUuid);
    const auth = credential(target.href);
    const there = await headImage(target, auth);
    if (there) return { size: there.size, actualSize: there.actualSize };
    const source = await uploadSource(layout, req.sourcePath);
    const scratch = `${layout.root}/.upload`;
    await mkdir(scratch, { recursive: true });
    const flat = partPath(`${scratch}/${imageUuid}.qcow2`);
    try {
      await runTool('qemu-img', convertArgs(source.path, source.format, flat, source.snapshot));
      const stored = await putImage(target, flat, await sha256OfFile(flat), auth);
      return { size: stored.size, actualSize: stored.actualSize };
    } finally {
      await rm(flat, { force: true });
    }
  }

  return {
    'image.cache': cache,
    'image.uncache': async (req) => {
      // a volume cloned from it still reads through it: the platform uncaches only unused images
      await rm(layoutFor(req.storage).cache(checkName(req.imageUuid, 'imageUuid')), { force: true });
      return {};
    },
    'image.upload': upload,
    'volume.create': createVolume,
    'volume.delete': deleteVolume,
    'volume.resize': resizeVolume,
    'snapshot.create': createSnapshot,
    'snapshot.delete': deleteSnapshot,
    'snapshot.revert': revertSnapshot,
  };
}

/** What image.upload reads: a volume's file, or (a snapshot record's path) one internal snapshot. */
async function uploadSource(
  layout: Layout,
  sourcePath: string,
): Promise<{ path: string; format: DiskFormat; snapshot?: string }> {
  const inside = (dir: string) =>
    sourcePath.startsWith(`${dir}/`) && !sourcePath.slice(dir.length + 1).includes('/');
  if (inside(layout.snapshotsDir) && sourcePath.endsWith('.json')) {
    const name = sourcePath.slice(layout.snapshotsDir.length + 1, -'.json'.length);
    const rec = await readRecord(layout, name);
    if (!rec) {
      throw new CloudError('NotFound', 'SNAPSHOT_NOT_FOUND_ON_STORAGE', `no snapshot at ${sourcePath}`, {
        details: { sourcePath },
      });
    }
    return { path: rec.volumePath, format: 'qcow2', snapshot: name };
  }
  if (inside(layout.volumesDir) && (await statOrUndefined(sourcePath))) {
    return { path: sourcePath, format: sourcePath.endsWith('.raw') ? 'raw' : 'qcow2' };
  }
  throw new CloudError(
    'NotFound',
    'UPLOAD_SOURCE_NOT_FOUND',
    `${sourcePath} is neither a volume nor a snapshot of primary storage at ${layout.root}`,
    { details: { field: 'sourcePath', value: sourcePath } },
  );
}
