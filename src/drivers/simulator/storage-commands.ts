/**
 * Simulated storage: commands succeed and report paths and sizes the way a real storage would
 * (thin volumes: a new empty volume uses almost nothing; a clone starts at the image's size).
 * The platform's capacity accounting does not depend on these answers beyond `actualSize`.
 */
import type { StorageRef } from '../../contract/agent.js';
import type { SimHandlers } from './machine.js';

type StorageCommands =
  | 'image.cache'
  | 'image.uncache'
  | 'image.upload'
  | 'volume.create'
  | 'volume.delete'
  | 'volume.resize'
  | 'snapshot.create'
  | 'snapshot.delete'
  | 'snapshot.revert';

const pathOf = (storage: StorageRef, kind: string, uuid: string) =>
  `${storage.url.replace(/\/$/, '')}/${kind}/${uuid}`;

export const storageHandlers: Pick<SimHandlers, StorageCommands> = {
  'image.cache': async ({ request }) => ({
    path: pathOf(request.storage, 'imagecache', request.imageUuid),
    size: request.size,
  }),
  'image.uncache': async () => ({}),
  // the host writes the file onto the backup storage: the simulated storage's world records it
  'image.upload': async ({ request, world }) => {
    await world
      .insertInto('simulatorBackupStorageImages')
      .values({ url: request.backupStorageUrl, imageUuid: request.imageUuid, size: request.size })
      .onConflict((oc) => oc.columns(['url', 'imageUuid']).doNothing())
      .execute();
    return { size: request.size, actualSize: request.size };
  },
  'volume.create': async ({ request }) => ({
    path: pathOf(request.storage, 'volumes', request.volumeUuid),
    actualSize: request.fromImageCachePath ? Math.min(request.size, 200 * 1024 ** 2) : 196_608,
  }),
  'volume.delete': async () => ({}),
  'volume.resize': async () => ({}),
  'snapshot.create': async ({ request }) => ({
    size: 64 * 1024 ** 2,
    path: pathOf(request.storage, 'snapshots', request.snapshotUuid),
  }),
  'snapshot.delete': async () => ({}),
  'snapshot.revert': async () => ({}),
};
