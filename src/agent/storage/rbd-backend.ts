/**
 * Ceph RBD primary storage (`ceph`), through the `rbd` and `rados` CLIs (ceph-common) and QEMU's
 * rbd driver (qemu-block-extra). The storage url names the pool and how to reach the cluster in
 * QEMU's own syntax: `rbd:<pool>[:conf=<ceph.conf>][:id=<user>]`; paths answered are
 * `rbd:<pool>/<image>[@<snap>][:conf=…][:id=…]`, which the VM part opens directly.
 *
 *   img-<imageUuid>@base     a cached image: an RBD image (raw) with a protected snapshot `base`
 *   vol-<volumeUuid>         a volume: an RBD clone of a cached image's `base` (or a plain image);
 *                            volumes are raw on RBD (RBD is the copy-on-write layer)
 *   vol-<volumeUuid>@<snap>  a snapshot: an RBD snapshot (taken live too: no QMP needed)
 *   omap of `nimbus-snapshots` snapshot uuid → volume uuid, since snapshot.delete names only the
 *                            snapshot
 *
 * Invariants: a cached image is usable only once its `base` is protected (a re-run finishes an
 * interrupted cache); partial copies live under `*.part-<random>` names and are removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
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
import { convertArgs, imageInfo, runTool } from './qemu-img.js';
import { headImage, imageUrl, putImage } from './upload.js';

export interface RbdPool {
  pool: string;
  conf?: string;
  id?: string;
}

const POOL_RE = /^[A-Za-z0-9_.-]+$/;

/** `rbd:<pool>[:conf=…][:id=…]` → the pool and how to reach its cluster. */
export function parseRbdUrl(url: string): RbdPool {
  const m = /^rbd:([^:/]+)((?::[a-z_]+=[^:]+)*)$/.exec(url);
  if (!m?.[1] || !POOL_RE.test(m[1])) {
    throw new CloudError(
      'Invalid',
      'STORAGE_URL_INVALID',
      `${url} is not an rbd:<pool>[:conf=…][:id=…] URL`,
      {
        details: { field: 'storage.url', value: url },
      },
    );
  }
  const pool: RbdPool = { pool: m[1] };
  for (const opt of (m[2] ?? '').split(':').filter(Boolean)) {
    const [key, value] = opt.split('=') as [string, string];
    if (key === 'conf') pool.conf = value;
    else if (key === 'id') pool.id = value;
  }
  return pool;
}

/** The QEMU path of an image (and snapshot) of the pool. */
export function rbdPath(p: RbdPool, image: string, snap?: string): string {
  return `rbd:${p.pool}/${image}${snap ? `@${snap}` : ''}${p.conf ? `:conf=${p.conf}` : ''}${p.id ? `:id=${p.id}` : ''}`;
}

/** Arguments common to every rbd/rados call of the pool. */
export function clusterArgs(p: RbdPool): string[] {
  return [...(p.conf ? ['--conf', p.conf] : []), ...(p.id ? ['--id', p.id] : [])];
}

const INDEX_OBJECT = 'nimbus-snapshots';
/** how long volume.delete waits for a dead client's watch to expire (the OSD's timeout is 30 s) */
const WATCHER_WAIT_MS = 40_000;
const notFound = (e: unknown) =>
  e instanceof CloudError &&
  /No such file or directory|\(2\)/.test(e.message) &&
  e.code === 'STORAGE_TOOL_FAILED';

export function rbdBackend(opts: StorageOptions): StorageBackend {
  const scratchDir = opts.scratchDir ?? tmpdir();
  const rbd = (p: RbdPool, args: string[]) => runTool('rbd', [...clusterArgs(p), ...args]);
  const rados = (p: RbdPool, args: string[]) => runTool('rados', [...clusterArgs(p), '-p', p.pool, ...args]);

  async function info(p: RbdPool, image: string): Promise<{ size: number; parent?: string } | undefined> {
    try {
      const { stdout } = await rbd(p, ['info', '--format', 'json', `${p.pool}/${image}`]);
      const v = JSON.parse(stdout) as {
        size: number;
        parent?: { pool: string; image: string; snapshot: string };
      };
      return {
        size: v.size,
        ...(v.parent ? { parent: `${v.parent.pool}/${v.parent.image}@${v.parent.snapshot}` } : {}),
      };
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async function snaps(p: RbdPool, image: string): Promise<Array<{ name: string; protected: boolean }>> {
    const { stdout } = await rbd(p, ['snap', 'ls', '--format', 'json', `${p.pool}/${image}`]);
    return (JSON.parse(stdout) as Array<{ name: string; protected?: string }>).map((s) => ({
      name: s.name,
      protected: s.protected === 'true',
    }));
  }

  async function used(p: RbdPool, image: string): Promise<number> {
    const { stdout } = await rbd(p, ['du', '--format', 'json', `${p.pool}/${image}`]);
    const v = JSON.parse(stdout) as {
      images?: Array<{ name: string; snapshot?: string; used_size: number }>;
    };
    return v.images?.find((i) => i.name === image && !i.snapshot)?.used_size ?? 0;
  }

  /**
   * `rbd rm`, waiting out a watcher for up to WATCHER_WAIT_MS: a client that died holding the
   * image (a QEMU killed, a host that crashed) keeps its watch until the OSD times it out
   * (osd_client_watch_timeout, 30 s), and RBD refuses to remove a watched image until then.
   * A watcher still there after that is a live client: STORAGE_VOLUME_IN_USE (retryable).
   */
  async function removeImage(p: RbdPool, image: string): Promise<void> {
    const deadline = Date.now() + WATCHER_WAIT_MS;
    for (;;) {
      try {
        await rbd(p, ['rm', '--no-progress', `${p.pool}/${image}`]);
        return;
      } catch (e) {
        if (!(e instanceof CloudError && /has watchers/.test(e.message))) throw e;
        if (Date.now() >= deadline) {
          throw new CloudError(
            'Conflict',
            'STORAGE_VOLUME_IN_USE',
            `RBD image ${p.pool}/${image} is still open by a client (it has watchers)`,
            { details: { image: `${p.pool}/${image}` }, retryable: true, cause: e },
          );
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  async function removeParts(p: RbdPool, image: string): Promise<void> {
    const { stdout } = await rbd(p, ['ls', '--format', 'json', p.pool]);
    for (const name of JSON.parse(stdout) as string[]) {
      if (name.startsWith(`${image}.part-`)) await rbd(p, ['rm', '--no-progress', `${p.pool}/${name}`]);
    }
  }

  /** The cached image's name and snapshot from its path, refused unless it is one of this pool's caches. */
  function cacheOf(p: RbdPool, path: string, storage: StorageRef): string {
    const m = /^rbd:([^/]+)\/(img-[A-Za-z0-9_-]+)@base(?::|$)/.exec(path);
    if (!m || m[1] !== p.pool) {
      throw new CloudError(
        'Invalid',
        'VOLUME_BACKING_INVALID',
        `fromImageCachePath ${path} is not a cached image of ceph primary storage ${storage.uuid}`,
        { details: { field: 'fromImageCachePath', value: path } },
      );
    }
    return m[2]!;
  }

  const sizeArg = (bytes: number) => `${bytes}B`;

  /** The volume uuid the index gives a snapshot; undefined when it has no entry (or no index yet). */
  async function indexed(p: RbdPool, snapshot: string): Promise<string | undefined> {
    await mkdir(scratchDir, { recursive: true });
    const file = `${scratchDir}/.omap-${randomBytes(4).toString('hex')}`;
    try {
      await rados(p, ['getomapval', INDEX_OBJECT, snapshot, file]);
      return (await readFile(file, 'utf8')).trim() || undefined;
    } catch (e) {
      if (e instanceof CloudError && /No such key|\(2\)/.test(e.message)) return undefined;
      throw e;
    } finally {
      await rm(file, { force: true });
    }
  }

  return {
    async 'image.cache'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `img-${checkName(req.imageUuid, 'imageUuid')}`;
      const sha256 = checkSha256Field(req.sha256, 'sha256');
      let present = await info(p, image);
      if (!present) {
        await mkdir(scratchDir, { recursive: true });
        const download = `${scratchDir}/.${image}.${randomBytes(4).toString('hex')}.part`;
        const part = `${image}.part-${randomBytes(4).toString('hex')}`;
        try {
          await removeParts(p, image);
          const auth = req.authorization ?? opts.credentialFor?.(req.url);
          await fetchToFile(req.url, download, {
            ...(auth ? { authorization: auth } : {}),
            ...(sha256 ? { sha256 } : {}),
          });
          const src = await imageInfo(download);
          if (src.backingFilename !== undefined) {
            throw new CloudError(
              'Invalid',
              'IMAGE_HAS_BACKING_FILE',
              `${req.url} has a backing file: an image must be standalone`,
              {
                details: { url: req.url, backingFilename: src.backingFilename },
              },
            );
          }
          await runTool('qemu-img', [
            'convert',
            '-f',
            src.format === 'raw' ? 'raw' : 'qcow2',
            '-O',
            'raw',
            download,
            rbdPath(p, part),
          ]);
          await rbd(p, ['rename', `${p.pool}/${part}`, `${p.pool}/${image}`]);
        } finally {
          await rm(download, { force: true });
          await rbd(p, ['rm', '--no-progress', `${p.pool}/${part}`]).catch(() => {});
        }
        present = await info(p, image);
        if (!present)
          throw new CloudError('Internal', 'IMAGE_CACHE_FAILED', `${image} vanished after its copy`);
      }
      // finishing an interrupted cache too: the base snapshot, protected (clones need that)
      const base = (await snaps(p, image)).find((s) => s.name === 'base');
      if (!base) await rbd(p, ['snap', 'create', `${p.pool}/${image}@base`]);
      if (!base?.protected) await rbd(p, ['snap', 'protect', `${p.pool}/${image}@base`]);
      return { path: rbdPath(p, image, 'base'), size: present.size };
    },

    async 'image.uncache'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `img-${checkName(req.imageUuid, 'imageUuid')}`;
      if (!(await info(p, image))) return {};
      const base = (await snaps(p, image)).find((s) => s.name === 'base');
      // fails while a volume is still cloned from it: the platform uncaches only unused images
      if (base?.protected) await rbd(p, ['snap', 'unprotect', `${p.pool}/${image}@base`]);
      if (base) await rbd(p, ['snap', 'rm', '--no-progress', `${p.pool}/${image}@base`]);
      await removeImage(p, image);
      return {};
    },

    async 'volume.create'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `vol-${checkName(req.volumeUuid, 'volumeUuid')}`;
      if (req.format !== 'raw') throw unsupportedFormat(`${req.format} (RBD volumes are raw)`, req.storage);
      const parent = req.fromImageCachePath ? cacheOf(p, req.fromImageCachePath, req.storage) : undefined;
      let present = await info(p, image);
      if (!present) {
        if (parent) {
          const base = await info(p, parent);
          if (!base) {
            throw new CloudError(
              'NotFound',
              'IMAGE_CACHE_MISSING',
              `cached image ${req.fromImageCachePath} is missing`,
              {
                details: { fromImageCachePath: req.fromImageCachePath },
              },
            );
          }
          if (req.size < base.size) {
            throw new CloudError(
              'Invalid',
              'VOLUME_SMALLER_THAN_IMAGE',
              `size ${req.size} is smaller than the image's ${base.size}`,
              {
                details: { field: 'size', size: req.size, imageSize: base.size },
              },
            );
          }
          await rbd(p, ['clone', `${p.pool}/${parent}@base`, `${p.pool}/${image}`]);
        } else {
          await rbd(p, ['create', '--size', sizeArg(req.size), `${p.pool}/${image}`]);
        }
        present = await info(p, image);
      }
      const expectedParent = parent ? `${p.pool}/${parent}@base` : undefined;
      if (!present || present.parent !== expectedParent || present.size > req.size) {
        throw new CloudError(
          'Conflict',
          'VOLUME_EXISTS_DIFFERENT',
          `volume ${req.volumeUuid} exists as ${image} with another parent or a larger size`,
          {
            details: { size: present?.size ?? null, parent: present?.parent ?? null },
          },
        );
      }
      // a clone starts at the image's size; growing it is the rest of the create (also on a re-run)
      if (present.size < req.size)
        await rbd(p, ['resize', '--no-progress', '--size', sizeArg(req.size), `${p.pool}/${image}`]);
      return { path: rbdPath(p, image), actualSize: await used(p, image) };
    },

    async 'volume.delete'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `vol-${checkName(req.volumeUuid, 'volumeUuid')}`;
      if (!(await info(p, image))) return {};
      for (const s of await snaps(p, image)) {
        await rados(p, ['rmomapkey', INDEX_OBJECT, s.name]).catch(() => {});
      }
      await rbd(p, ['snap', 'purge', '--no-progress', `${p.pool}/${image}`]);
      await removeImage(p, image);
      return {};
    },

    async 'volume.resize'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `vol-${checkName(req.volumeUuid, 'volumeUuid')}`;
      const present = await info(p, image);
      if (!present) throw volumeNotFound(req.volumeUuid, req.storage);
      if (req.size === present.size) return {};
      if (req.size < present.size) {
        throw new CloudError(
          'Invalid',
          'VOLUME_SHRINK_REFUSED',
          `volume ${req.volumeUuid} is ${present.size} bytes: it can only grow`,
          {
            details: { field: 'size', size: req.size, current: present.size },
          },
        );
      }
      // RBD resizes under a running QEMU too; the guest learns it from vm.resize-volume (block_resize)
      await rbd(p, ['resize', '--no-progress', '--size', sizeArg(req.size), `${p.pool}/${image}`]);
      return {};
    },

    async 'snapshot.create'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `vol-${checkName(req.volumeUuid, 'volumeUuid')}`;
      const name = checkName(req.snapshotUuid, 'snapshotUuid');
      if (!(await info(p, image))) throw volumeNotFound(req.volumeUuid, req.storage);
      // the index first: a crash after it leaves an entry snapshot.delete can clean
      await rados(p, ['setomapval', INDEX_OBJECT, name, req.volumeUuid]);
      if (!(await snaps(p, image)).some((s) => s.name === name)) {
        await rbd(p, ['snap', 'create', `${p.pool}/${image}@${name}`]);
      }
      return { size: await used(p, image), path: rbdPath(p, image, name) };
    },

    async 'snapshot.delete'(req) {
      const p = parseRbdUrl(req.storage.url);
      const name = checkName(req.snapshotUuid, 'snapshotUuid');
      const volumeUuid = await indexed(p, name);
      if (volumeUuid) {
        const image = `vol-${checkName(volumeUuid, 'volumeUuid')}`;
        if ((await info(p, image)) && (await snaps(p, image)).some((s) => s.name === name)) {
          await rbd(p, ['snap', 'rm', '--no-progress', `${p.pool}/${image}@${name}`]);
        }
        await rados(p, ['rmomapkey', INDEX_OBJECT, name]);
      }
      return {};
    },

    async 'snapshot.revert'(req) {
      const p = parseRbdUrl(req.storage.url);
      const image = `vol-${checkName(req.volumeUuid, 'volumeUuid')}`;
      const name = checkName(req.snapshotUuid, 'snapshotUuid');
      if (!(await info(p, image))) throw volumeNotFound(req.volumeUuid, req.storage);
      if (!(await snaps(p, image)).some((s) => s.name === name)) {
        throw new CloudError(
          'NotFound',
          'SNAPSHOT_NOT_FOUND_ON_STORAGE',
          `volume ${req.volumeUuid} has no snapshot ${name}`,
          {
            details: { volumeUuid: req.volumeUuid, snapshotUuid: name },
          },
        );
      }
      await rbd(p, ['snap', 'rollback', '--no-progress', `${p.pool}/${image}@${name}`]);
      return {};
    },

    async 'image.upload'(req: AgentRequest<'image.upload'>) {
      const p = parseRbdUrl(req.storage.url);
      const imageUuid = checkName(req.imageUuid, 'imageUuid');
      const target = imageUrl(req.backupStorageUrl, imageUuid);
      const auth = req.authorization ?? opts.credentialFor?.(target.href);
      const there = await headImage(target, auth);
      if (there) return { size: there.size, actualSize: there.actualSize };
      const m = /^rbd:([^/]+)\/(vol-[A-Za-z0-9_-]+)(?:@([A-Za-z0-9_-]+))?(?::|$)/.exec(req.sourcePath);
      if (!m || m[1] !== p.pool) {
        throw new CloudError(
          'NotFound',
          'UPLOAD_SOURCE_NOT_FOUND',
          `${req.sourcePath} is not a volume or snapshot of pool ${p.pool}`,
          {
            details: { field: 'sourcePath', value: req.sourcePath },
          },
        );
      }
      await mkdir(scratchDir, { recursive: true });
      const flat = `${scratchDir}/.${imageUuid}.${randomBytes(4).toString('hex')}.part.qcow2`;
      try {
        await runTool('qemu-img', convertArgs(rbdPath(p, m[2]!, m[3]), 'raw', flat));
        const stored = await putImage(target, flat, await sha256OfFile(flat), auth);
        return { size: stored.size, actualSize: stored.actualSize };
      } finally {
        await rm(flat, { force: true });
      }
    },
  };
}
