/**
 * The agent's primary-storage part: the storage commands of contract/agent.ts (image.cache/
 * uncache/upload, volume.*, snapshot.*), each dispatched on `request.storage.type` to that type's
 * backend (a typed map). Backends: local and shared-mount (a directory on this host) and nfs (an
 * export reached by nfs:// URLs), all qcow2 files in one layout (file-backend.ts over
 * storage-fs.ts); and ceph (RBD images, clones and snapshots: rbd-backend.ts).
 *
 * Invariant: concurrent image.cache commands for one image on one storage share a single copy
 * (the second waits for the first's answer); the backend makes a finished copy idempotent too.
 */
import type { AgentRequest, AgentResponse, StorageRef } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { AgentHandlers } from '../handlers.js';
import {
  STORAGE_COMMANDS,
  type StorageBackend,
  type StorageCommand,
  type StorageOptions,
} from './backend.js';
import { fileBackend, localAccess } from './file-backend.js';
import { layoutOf } from './layout.js';
import { rbdBackend } from './rbd-backend.js';
import { nfsFs } from './storage-fs.js';

export type { LiveDiskHooks, StorageOptions } from './backend.js';

type Backends = { [T in StorageRef['type']]: StorageBackend | undefined };

export function storageHandlers(opts: StorageOptions = {}): AgentHandlers {
  const files = fileBackend(opts, localAccess);
  const nfs = fileBackend(opts, (storage) => ({ layout: layoutOf(storage.url), fs: nfsFs(storage) }));
  const backends: Backends = { local: files, 'shared-mount': files, nfs, ceph: rbdBackend(opts) };
  const backendOf = (storage: StorageRef | undefined): StorageBackend => {
    const backend = storage ? backends[storage.type] : undefined;
    if (!backend) {
      throw new CloudError(
        'Invalid',
        'STORAGE_TYPE_UNSUPPORTED',
        `this agent has no backend for ${storage?.type ?? 'a request without storage'} primary storage`,
        { details: { field: 'storage.type', value: storage?.type ?? null } },
      );
    }
    return backend;
  };

  const handlers: AgentHandlers = {};
  const set = <C extends StorageCommand>(command: C) => {
    (handlers as { [K in C]?: (r: AgentRequest<K>) => Promise<AgentResponse<K>> })[command] = (request) =>
      backendOf(request.storage)[command](request);
  };
  for (const command of STORAGE_COMMANDS) set(command);

  const copying = new Map<string, Promise<AgentResponse<'image.cache'>>>();
  handlers['image.cache'] = (request) => {
    const key = `${request.storage.type}\u0000${request.storage.url}\u0000${request.imageUuid}`;
    const running = copying.get(key);
    if (running) return running;
    const copy = backendOf(request.storage)
      ['image.cache'](request)
      .finally(() => copying.delete(key));
    copying.set(key, copy);
    return copy;
  };
  return handlers;
}
