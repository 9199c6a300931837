/**
 * The agent's backup-storage part (enabled when the agent is given a directory, e.g.
 * `--backup-storage-dir <dir>`): a directory that really holds image files (image-store.ts),
 * answering the backup-storage commands of contract/agent.ts and serving the images over HTTP
 * (routes.ts: `GET|HEAD|PUT /v1/images/<uuid>`), which is how hosts fetch images into their
 * primary storage (image.cache) and send volumes back as images (image.upload).
 *
 * Invariants: every command is idempotent (a stored image downloads as success without a fetch;
 * deleting a missing image is success); concurrent downloads of one image share one fetch; a
 * failed download leaves nothing behind.
 */
import { rm, statfs } from 'node:fs/promises';
import type { BackupStorageCommand, BackupStorageCommands } from '../../contract/agent.js';
import { checkName } from '../storage/backend.js';
import { fetchToFile } from '../storage/fetch-image.js';
import { ImageStore } from './image-store.js';

export { type BackupStorageRouteOptions, backupStorageRoutes } from './routes.js';

/** Backup-storage commands are a map apart from AgentCommands (the management side sends them to a backup storage, not a host). */
export type BackupStorageHandler<C extends BackupStorageCommand> = (
  request: BackupStorageCommands[C]['request'],
) => Promise<BackupStorageCommands[C]['response']>;

export type BackupStorageHandlers = { [C in BackupStorageCommand]: BackupStorageHandler<C> };

export interface BackupStorageOptions {
  /** the directory holding the images (created if missing) */
  dir: string;
  /** the Authorization header value for an http(s) image URL, if that source wants one */
  credentialFor?: (url: string) => string | undefined;
}

export function backupStorageHandlers(opts: BackupStorageOptions): BackupStorageHandlers {
  const store = new ImageStore(opts.dir);
  const downloading = new Map<string, Promise<BackupStorageCommands['bs.download-image']['response']>>();

  async function download(request: BackupStorageCommands['bs.download-image']['request']) {
    const uuid = checkName(request.imageUuid, 'imageUuid');
    const present = await store.find(uuid);
    if (present) return { size: present.size, actualSize: present.actualSize, sha256: present.sha256 };
    const part = await store.part(uuid);
    try {
      const auth = opts.credentialFor?.(request.url);
      const fetched = await fetchToFile(request.url, part, auth ? { authorization: auth } : {});
      const stored = await store.publish(uuid, part, fetched.sha256, request.url);
      return { size: stored.size, actualSize: stored.actualSize, sha256: stored.sha256 };
    } finally {
      await rm(part, { force: true });
    }
  }

  return {
    'bs.connect': async () => {
      await store.ensureDir();
      const fs = await statfs(store.dir);
      return { capacityTotal: fs.blocks * fs.bsize, capacityAvailable: fs.bavail * fs.bsize };
    },
    'bs.download-image': (request) => {
      const running = downloading.get(request.imageUuid);
      if (running) return running;
      const job = download(request).finally(() => downloading.delete(request.imageUuid));
      downloading.set(request.imageUuid, job);
      return job;
    },
    'bs.delete-image': async (request) => {
      await store.remove(checkName(request.imageUuid, 'imageUuid'));
      return {};
    },
  };
}
