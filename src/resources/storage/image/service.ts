/**
 * Images: templates for VMs and volumes, kept on backup storage. Any account adds its own; an
 * account sees its own images and public ones (only the admin publishes); only the owner or the
 * admin changes one. Adding runs the image.create chain (flows.ts): the row (Downloading), the
 * account's `image.num` quota and the choice of backup storage are settled at admission, in one
 * transaction, so a refused request changes nothing.
 */
import { images as contract } from '../../../contract/storage.js';
import type { ImageState } from '../../../db/schema.js';
import type { Tx } from '../../../db/transaction.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, forbidden, invalid, invalidField } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { changeFlow, loadVisible, queueKey, resourceEvent, submitFor } from '../../common.js';
import { reserveQuota } from '../../identity/quota/quota.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import {
  imageFamily as family,
  IMAGE_CREATE_DONE_AT_ADMISSION,
  imageCreateFlow,
  imageDeleteFlow,
  imageExpungeFlow,
  imageRecoverFlow,
} from './flows.js';
import {
  assertImageState,
  defaultMediaType,
  type ImageFormat,
  imageRequestProblems,
  type MediaType,
} from './model.js';
import { reapExpiredImages } from './reaper.js';

export const imageSchema: KindSchema = {
  kind: 'images',
  table: 'images',
  visibility: 'owned',
  publicColumn: 'isPublic',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    url: 'string',
    format: { enum: ['qcow2', 'raw', 'iso'] },
    mediaType: { enum: ['RootVolumeTemplate', 'DataVolumeTemplate', 'ISO'] },
    platform: { enum: ['Linux', 'Windows', 'Other'] },
    guestOsType: 'string',
    size: 'int',
    actualSize: 'int',
    minDisk: 'int',
    state: { enum: ['Downloading', 'Ready', 'Error', 'Deleted'] },
    isPublic: 'boolean',
    backupStorageUuid: 'uuid',
    deletedAt: 'timestamp',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    backupStorage: { kind: 'backup-storages', local: 'backupStorageUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/**
 * The backup storage a new image goes to: the one asked for (it must be Enabled and Connected),
 * else the Enabled, Connected one attached to a zone with the most free space. No lock: the
 * image's foreign key keeps the storage from being deleted under it, and a storage disabled a
 * moment later only means this last image still lands on it.
 */
async function chooseBackupStorage(tx: Tx, requested: string | undefined): Promise<string> {
  if (requested) {
    const bs = await tx
      .selectFrom('backupStorages')
      .select(['uuid', 'state', 'status'])
      .where('uuid', '=', requested)
      .executeTakeFirst();
    if (!bs)
      throw invalidField('backupStorageUuid', `no backup storage ${requested}`, 'BACKUP_STORAGE_NOT_FOUND');
    if (bs.state !== 'Enabled' || bs.status !== 'Connected') {
      throw new CloudError(
        'Conflict',
        'BACKUP_STORAGE_NOT_READY',
        `backup storage ${requested} is ${bs.state} and ${bs.status}; images go to an Enabled, Connected one`,
        { details: { state: bs.state, status: bs.status } },
      );
    }
    return bs.uuid;
  }
  const best = await tx
    .selectFrom('backupStorages as b')
    .select('b.uuid')
    .where('b.state', '=', 'Enabled')
    .where('b.status', '=', 'Connected')
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('backupStorageZones as z')
          .select('z.zoneUuid')
          .whereRef('z.backupStorageUuid', '=', 'b.uuid'),
      ),
    )
    .orderBy((eb) => eb('b.capacityTotal', '-', eb.ref('b.capacityUsed')), 'desc')
    .orderBy('b.uuid')
    .limit(1)
    .executeTakeFirst();
  if (!best) {
    throw new CloudError(
      'Conflict',
      'NO_BACKUP_STORAGE',
      'no Enabled, Connected backup storage is attached to a zone; add one and attach it first',
    );
  }
  return best.uuid;
}

export class ImageService implements KindService {
  readonly contract = contract;
  readonly schema = imageSchema;
  readonly actions: Record<string, Operation>;
  private readonly reaper: PeriodicTask;

  constructor(private readonly ctx: ServiceContext) {
    this.reaper = new PeriodicTask(
      ctx.deps.settings.reaperIntervalSeconds * 1000,
      () => reapExpiredImages(ctx, ctx.deps.settings),
      (err) => ctx.deps.log.warn({ err }, 'image reaper pass failed'),
    );
    for (const flow of [imageCreateFlow, imageDeleteFlow, imageRecoverFlow, imageExpungeFlow])
      ctx.engine.register(flow);
    ctx.engine.register(changeFlow(family, 'image.update', 'updated'));
    this.actions = {
      recover: async (caller, uuid) => {
        const image = await this.loadOwned(caller, uuid);
        assertImageState(uuid, image.state as ImageState, 'recover');
        return submitFor(ctx, family, caller, image, 'image.recover');
      },
      expunge: async (caller, uuid) => {
        const image = await this.loadOwned(caller, uuid);
        assertImageState(uuid, image.state as ImageState, 'expunge');
        return submitFor(ctx, family, caller, image, 'image.expunge');
      },
    };
  }

  /** Deleted images are expunged once their retention period is over. */
  start(): void {
    this.reaper.start();
  }

  stop(): Promise<void> {
    return this.reaper.stop();
  }

  /** A visible image the caller may change: its own, or any for the admin (public ones are read-only). */
  private async loadOwned(caller: Caller, uuid: string) {
    const image = await loadVisible(this.ctx, imageSchema, uuid, caller);
    if (!caller.isAdmin && image.accountUuid !== caller.accountUuid)
      throw forbidden(
        `image ${uuid} is public but not yours; only its owner or the admin may change it`,
        'IMAGE_NOT_OWNED',
      );
    return image;
  }

  create(caller: Caller, body: Record<string, unknown>) {
    return this.createAs(caller, newId(), body);
  }

  /**
   * A create whose image id is chosen by the caller: the OpenStack façade's Glance image exists
   * (queued) before its data does, and keeps its id once uploaded. The id must be a new one.
   */
  async createAs(caller: Caller, uuid: string, body: Record<string, unknown>) {
    if (body.isPublic === true && !caller.isAdmin)
      throw forbidden('only the admin account may make an image public', 'IMAGE_PUBLIC_ADMIN_ONLY');
    const format = body.format as ImageFormat;
    const problems = imageRequestProblems({
      format,
      ...(body.mediaType ? { mediaType: body.mediaType as MediaType } : {}),
    });
    if (problems.length > 0) throw invalid(problems);
    return this.ctx.engine.submitAndStart(
      {
        kind: 'image.create',
        accountUuid: caller.accountUuid,
        userUuid: caller.userUuid,
        resourceKind: family.kind,
        resourceUuid: uuid,
        queueKey: queueKey(family, uuid),
        requestId: caller.requestId,
        done: IMAGE_CREATE_DONE_AT_ADMISSION,
      },
      async (tx, batch) => {
        const row = {
          uuid,
          name: body.name as string,
          description: (body.description as string) ?? null,
          url: body.url as string,
          format,
          mediaType: (body.mediaType as MediaType) ?? defaultMediaType(format),
          platform: (body.platform as string) ?? 'Linux',
          guestOsType: (body.guestOsType as string) ?? null,
          minDisk: (body.minDisk as number) ?? 0,
          isPublic: body.isPublic === true,
          state: 'Downloading' as const,
          backupStorageUuid: await chooseBackupStorage(tx, body.backupStorageUuid as string | undefined),
          deletedAt: null,
          accountUuid: caller.accountUuid,
        };
        await tx.insertInto('images').values(row).execute();
        await reserveQuota(tx, { uuid: caller.accountUuid, isAdmin: caller.isAdmin }, { 'image.num': 1 });
        batch.add(resourceEvent(family, row, 'created', { name: row.name }));
      },
    );
  }

  update: Operation = async (caller, uuid, body) => {
    if (body.isPublic !== undefined && !caller.isAdmin)
      throw forbidden(
        'only the admin account may make an image public or private',
        'IMAGE_PUBLIC_ADMIN_ONLY',
      );
    const image = await this.loadOwned(caller, uuid);
    return submitFor(this.ctx, family, caller, image, 'image.update', { changes: body });
  };

  async remove(caller: Caller, uuid: string) {
    const image = await this.loadOwned(caller, uuid);
    return submitFor(this.ctx, family, caller, image, 'image.delete');
  }
}
