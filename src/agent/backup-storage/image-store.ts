/**
 * The files of a backup storage directory:
 *
 *   <dir>/images/<uuid>.qcow2          an image: always a standalone qcow2 (no backing file)
 *   <dir>/images/<uuid>.qcow2.sha256   its sha256 (hex), written right after the image is published
 *   <dir>/images/.<uuid>.qcow2.*.part  a download or upload in progress
 *
 * Invariant: `<uuid>.qcow2` exists only complete and checked (published by rename). The old
 * digest file is removed before a new image is published, so a digest file never describes
 * another file; an image without one (a crash between the two renames, or a manual copy) gets its
 * digest computed when it is read.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { CloudError } from '../../kernel/errors.js';
import { checkName } from '../storage/backend.js';
import { sha256OfFile } from '../storage/fetch-image.js';
import { allocatedBytes, publishImage } from '../storage/file-backend.js';
import { partPath } from '../storage/layout.js';
import { imageInfo } from '../storage/qemu-img.js';

export interface StoredImage {
  path: string;
  /** virtual size (qemu-img info), bytes */
  size: number;
  /** bytes the file occupies on the backup storage */
  actualSize: number;
  /** file length, bytes (what GET sends) */
  length: number;
  sha256: string;
}

export class ImageStore {
  readonly imagesDir: string;

  constructor(readonly dir: string) {
    this.imagesDir = `${dir.replace(/\/+$/, '')}/images`;
  }

  pathOf(imageUuid: string): string {
    return `${this.imagesDir}/${checkName(imageUuid, 'imageUuid')}.qcow2`;
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.imagesDir, { recursive: true });
  }

  /** The stored image, or undefined when there is none. */
  async find(imageUuid: string): Promise<StoredImage | undefined> {
    const path = this.pathOf(imageUuid);
    const s = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!s) return undefined;
    const info = await imageInfo(path, 'qcow2');
    let sha256 = (await readFile(`${path}.sha256`, 'utf8').catch(() => '')).trim();
    if (!/^[0-9a-f]{64}$/.test(sha256)) sha256 = await sha256OfFile(path);
    return { path, size: info.virtualSize, actualSize: s.blocks * 512, length: s.size, sha256 };
  }

  /** A fresh temporary name for `imageUuid` (the caller fills it, then calls publish or discard). */
  async part(imageUuid: string): Promise<string> {
    await this.ensureDir();
    return partPath(this.pathOf(imageUuid));
  }

  /**
   * Checks a filled part (an image, no backing file; converted to qcow2 when it is another format)
   * and publishes it under the image's name with its digest. `sha256` is the part's digest as it
   * was received; a conversion changes the bytes, so it is recomputed then.
   */
  async publish(imageUuid: string, part: string, sha256: string, source: string): Promise<StoredImage> {
    const path = this.pathOf(imageUuid);
    const digestFile = `${path}.sha256`;
    const info = await imageInfo(part).catch((e: unknown) => {
      throw new CloudError('Invalid', 'IMAGE_UNREADABLE', `${source} is not a disk image qemu-img can read`, {
        details: { source },
        cause: e,
      });
    });
    // a raw part is converted first, so its digest is that of the published qcow2
    const digest = info.format === 'qcow2' && info.backingFilename === undefined ? sha256 : undefined;
    await rm(digestFile, { force: true });
    const published = await publishImage(part, path, source);
    const finalDigest = digest ?? (await sha256OfFile(path));
    await writeDigest(digestFile, finalDigest);
    return {
      path,
      size: published.virtualSize,
      actualSize: await allocatedBytes(path),
      length: (await stat(path)).size,
      sha256: finalDigest,
    };
  }

  async remove(imageUuid: string): Promise<void> {
    const path = this.pathOf(imageUuid);
    await rm(path, { force: true });
    await rm(`${path}.sha256`, { force: true });
  }
}

async function writeDigest(path: string, digest: string): Promise<void> {
  const part = partPath(path);
  try {
    await writeFile(part, `${digest}\n`);
    await rename(part, path);
  } finally {
    await rm(part, { force: true });
  }
}
