/**
 * What a primary-storage backend is (one per StorageRef.type, one file each) and what the agent
 * gives the storage part. A backend answers every storage command for the storages of its type;
 * index.ts picks it by `request.storage.type`. Every answer is idempotent (see contract/agent.ts).
 */
import type { AgentCommands, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { AgentHandler } from '../handlers.js';

export const STORAGE_COMMANDS = [
  'image.cache',
  'image.uncache',
  'image.upload',
  'volume.create',
  'volume.delete',
  'volume.resize',
  'snapshot.create',
  'snapshot.delete',
  'snapshot.revert',
] as const satisfies ReadonlyArray<keyof AgentCommands>;

export type StorageCommand = (typeof STORAGE_COMMANDS)[number];

export type StorageBackend = { [C in StorageCommand]: AgentHandler<C> };

/**
 * Operations on a disk a running VM holds open. QEMU locks its disks, so qemu-img cannot write
 * them (STORAGE_VOLUME_IN_USE); the VM part does them through QMP instead
 * (blockdev-snapshot-internal-sync, blockdev-snapshot-delete-internal-sync, block_resize).
 * Each answers false when no running VM holds `path` (the storage then does it offline).
 */
export interface LiveDiskHooks {
  snapshotCreate(path: string, name: string): Promise<boolean>;
  snapshotDelete(path: string, name: string): Promise<boolean>;
  resize(path: string, size: number): Promise<boolean>;
}

export interface StorageOptions {
  /**
   * The Authorization header value for a URL this host fetches an image from or uploads one to
   * (a backup storage's `Bearer <secret>`); undefined = send none. Never called for file sources.
   */
  credentialFor?: (url: string) => string | undefined;
  /** the VM part's live disk operations; without them a disk in use is refused (or, for resize, left to vm.resize-volume) */
  live?: LiveDiskHooks;
  /** where uploads from storages that are not local directories are flattened first (default: os.tmpdir()) */
  scratchDir?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A uuid used as a file or image name: refused unless it is a plain name (no '/', no '..'). */
export function checkName(value: string, field: string): string {
  if (!NAME_RE.test(value)) {
    throw new CloudError('Invalid', 'STORAGE_NAME_INVALID', `${field} must be a plain identifier (a uuid)`, {
      details: { field, value },
    });
  }
  return value;
}

export function unsupportedFormat(format: string, storage: StorageRef): CloudError {
  return new CloudError(
    'Invalid',
    'VOLUME_FORMAT_UNSUPPORTED',
    `${storage.type} primary storage ${storage.uuid} cannot hold a ${format} volume`,
    { details: { field: 'format', format, storageType: storage.type } },
  );
}

export function volumeNotFound(volumeUuid: string, storage: StorageRef): CloudError {
  return new CloudError(
    'NotFound',
    'VOLUME_NOT_FOUND_ON_STORAGE',
    `volume ${volumeUuid} is not on primary storage ${storage.uuid}`,
    {
      details: { volumeUuid, primaryStorageUuid: storage.uuid },
    },
  );
}
