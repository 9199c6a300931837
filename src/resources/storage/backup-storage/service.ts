/**
 * Backup storages: where images are kept. Admin-only. Adding one runs the backup-storage.create
 * chain (see flows.ts); it is attached to zones so their VMs can use its images. Capacity:
 * `capacityTotal` is what the storage reports on connect, `capacityUsed` the sum of its images'
 * actual sizes, changed only by the image chains' conditional UPDATEs (image/flows.ts).
 * Deleting one is refused while it holds images (Deleted ones included: expunge them first).
 */
import { backupStorages as contract } from '../../../contract/storage.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { invalidField } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadVisible, submitFor } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, type StandardOperations, standardOperations } from '../../standard.js';
import {
  backupStorageCreateFlow,
  backupStorageReconnectFlow,
  backupStorageFamily as family,
  zoneFlow,
} from './flows.js';

const nameTaken = (err: unknown) =>
  mapUnique(err, 'BACKUP_STORAGE_NAME_TAKEN', 'a backup storage with this name already exists');

export const backupStorageSchema: KindSchema = {
  kind: 'backup-storages',
  table: 'backupStorages',
  visibility: 'admin',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    type: { enum: ['simulator', 'agent'] },
    url: 'string',
    capacityTotal: 'int',
    capacityUsed: 'int',
    state: { enum: ['Enabled', 'Disabled'] },
    status: { enum: ['Connecting', 'Connected', 'Disconnected'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    // q=zoneRefs.zone.name=zone-1: storages attached to a zone
    zoneRefs: { kind: 'backup-storage-zones', local: 'uuid', remote: 'backupStorageUuid', many: true },
    images: { kind: 'images', local: 'uuid', remote: 'backupStorageUuid', many: true },
  },
  defaultSort: 'createdAt',
};

/** The attachments, queryable only through `zoneRefs` (no routes of their own). */
export const backupStorageZoneSchema: KindSchema = {
  kind: 'backup-storage-zones',
  table: 'backupStorageZones',
  visibility: 'admin',
  key: 'zoneUuid',
  fields: { backupStorageUuid: 'uuid', zoneUuid: 'uuid' },
  relations: { zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' } },
};

function present(row: Record<string, unknown>): Record<string, unknown> {
  return { ...row, capacityAvailable: Number(row.capacityTotal) - Number(row.capacityUsed) };
}

export class BackupStorageService implements KindService {
  readonly contract = contract;
  readonly schema = backupStorageSchema;
  readonly update: StandardOperations['update'];
  readonly remove: StandardOperations['remove'];
  readonly actions: Record<string, Operation>;
  readonly present = present;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(backupStorageCreateFlow);
    ctx.engine.register(backupStorageReconnectFlow);
    ctx.engine.register(zoneFlow('attach-zone'));
    ctx.engine.register(zoneFlow('detach-zone'));
    const ops = standardOperations(ctx, {
      family,
      schema: backupStorageSchema,
      blockers: [{ table: 'images', column: 'backupStorageUuid', what: 'images' }],
      states: ENABLE_DISABLE,
      mapUpdateError: nameTaken,
    });
    this.update = ops.update;
    this.remove = ops.remove;
    const load = (caller: Caller, uuid: string) => loadVisible(ctx, backupStorageSchema, uuid, caller);
    const zoneAction =
      (action: 'attach-zone' | 'detach-zone'): Operation =>
      async (caller, uuid, body) => {
        const bs = await load(caller, uuid);
        const zoneUuid = body.zoneUuid as string;
        const zone = await ctx.db
          .selectFrom('zones')
          .select('uuid')
          .where('uuid', '=', zoneUuid)
          .executeTakeFirst();
        // detaching from a zone that is gone is harmless; attaching to one is not
        if (!zone && action === 'attach-zone')
          throw invalidField('zoneUuid', `no zone ${zoneUuid}`, 'ZONE_NOT_FOUND');
        return submitFor(ctx, family, caller, bs, `backup-storage.${action}`, { zoneUuid });
      };
    this.actions = {
      ...ops.actions,
      reconnect: async (caller, uuid) =>
        submitFor(ctx, family, caller, await load(caller, uuid), 'backup-storage.reconnect'),
      'attach-zone': zoneAction('attach-zone'),
      'detach-zone': zoneAction('detach-zone'),
    };
  }

  create(caller: Caller, body: Record<string, unknown>) {
    const type = body.type as string;
    const secret = body.agentSecret as string | undefined;
    if (type === 'agent' && secret === undefined)
      throw invalidField('agentSecret', "required for an agent backup storage: the agent's secret");
    if (type !== 'agent' && secret !== undefined)
      throw invalidField('agentSecret', `only for agent backup storages; this one is ${type}`);
    if (type === 'agent' && !/^https?:\/\/[^/]+\/?$/.test(body.url as string))
      throw invalidField('url', "an agent backup storage's url is its agent's address: http://<ip>:<port>");
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      type: body.type as string,
      url: body.url as string,
      status: 'Connecting' as const,
      accountUuid: caller.accountUuid,
    };
    const params = { capacity: body.capacity };
    if (secret === undefined)
      return admitCreate(this.ctx, family, caller, row, params, { mapError: nameTaken });
    // the secret is kept apart (backup_storage_secrets), written with the record, never in params
    return admitCreate(this.ctx, family, caller, row, params, {
      skipInsert: true,
      mapError: nameTaken,
      check: async (tx) => {
        await tx.insertInto('backupStorages').values(row).execute();
        await tx.insertInto('backupStorageSecrets').values({ backupStorageUuid: row.uuid, secret }).execute();
      },
    });
  }

  /** One storage, with the zones it is attached to. */
  async get(caller: Caller, uuid: string): Promise<unknown> {
    const row = await loadVisible(this.ctx, backupStorageSchema, uuid, caller);
    const zones = await this.ctx.db
      .selectFrom('backupStorageZones')
      .select('zoneUuid')
      .where('backupStorageUuid', '=', uuid)
      .orderBy('zoneUuid')
      .execute();
    return { ...present(row), zoneUuids: zones.map((z) => z.zoneUuid) };
  }
}
