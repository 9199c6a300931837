/**
 * The file operations a file-based primary storage needs besides qemu-img, on the storage's own
 * paths (the same strings qemu-img and QEMU are given): a local directory (`local`,
 * `shared-mount`: absolute paths) or an NFS export (`nfs`: `nfs://server/export/…` URLs, reached
 * through nfs-client.ts since hosts here have no kernel NFS client).
 *
 * `localDir` tells whether paths are local files (a download can be written in place and published
 * by rename); otherwise downloads land in a local scratch directory and qemu-img copies them over.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import { partPath } from './layout.js';
import { NfsSession, parseNfsUrl } from './nfs-client.js';

export interface FileStat {
  size: number;
  /** bytes the file really occupies (thin and sparse files use less than their size) */
  allocated: number;
}

export interface StorageFs {
  readonly localDir: boolean;
  stat(path: string): Promise<FileStat | undefined>;
  mkdirs(path: string): Promise<void>;
  /** a missing file is success */
  remove(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** names in the directory; a missing directory lists nothing */
  list(dir: string): Promise<string[]>;
  readText(path: string): Promise<string | undefined>;
  /** written under a part name, then renamed: readers see the old text or the new, never half */
  writeText(path: string, text: string): Promise<void>;
  /** ends the session (NFS); the object is not used after */
  close(): void;
}

const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

export const localFs: StorageFs = {
  localDir: true,
  async stat(path) {
    try {
      const s = await stat(path);
      return { size: s.size, allocated: s.blocks * 512 };
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
  },
  mkdirs: async (path) => {
    await mkdir(path, { recursive: true });
  },
  remove: (path) => rm(path, { force: true }),
  rename: (from, to) => rename(from, to),
  list: (dir) => readdir(dir).catch((e: unknown) => (missing(e) ? [] : Promise.reject(e))),
  readText: (path) =>
    readFile(path, 'utf8').catch((e: unknown) => (missing(e) ? undefined : Promise.reject(e))),
  async writeText(path, text) {
    const part = partPath(path);
    try {
      await writeFile(part, text);
      await rename(part, path);
    } finally {
      await rm(part, { force: true });
    }
  },
  close() {},
};

/** An NFS export's files by their nfs:// URLs; the session is opened on first use. */
export function nfsFs(storage: StorageRef): StorageFs {
  const root = storage.url.replace(/\/+$/, '');
  const target = parseNfsUrl(root);
  let session: Promise<NfsSession> | undefined;
  const open = () => {
    session ??= NfsSession.open(target);
    return session;
  };
  const rel = (path: string) => {
    if (path !== root && !path.startsWith(`${root}/`)) {
      throw new CloudError('Invalid', 'STORAGE_PATH_OUTSIDE', `${path} is not on nfs storage ${root}`, {
        details: { path, root },
      });
    }
    return path.slice(root.length + 1);
  };
  return {
    localDir: false,
    async stat(path) {
      const a = await (await open()).stat(rel(path));
      return a && { size: a.size, allocated: a.used };
    },
    mkdirs: async (path) => (await open()).mkdirs(rel(path)),
    remove: async (path) => (await open()).remove(rel(path)),
    rename: async (from, to) => (await open()).rename(rel(from), rel(to)),
    list: async (dir) => (await open()).list(rel(dir)),
    readText: async (path) => (await (await open()).readFile(rel(path)))?.toString('utf8'),
    async writeText(path, text) {
      const s = await open();
      const part = partPath(path);
      try {
        await s.writeFile(rel(part), Buffer.from(text, 'utf8'));
        await s.rename(rel(part), rel(path));
      } finally {
        await s.remove(rel(part));
      }
    },
    close() {
      session?.then((s) => s.close()).catch(() => {});
    },
  };
}
