/**
 * Volume snapshots as an API kind. A snapshot belongs to its volume's account and counts against
 * that account's `snapshot.num`, reserved at admission with the record. Its chains run in the
 * volume's queue, so one volume's snapshots are taken, deleted and reverted one at a time; a
 * revert of an attached volume holds its VM (which must be Stopped) and runs in the VM's queue.
 */
import { volumeSnapshots as contract } from '../../../contract/volumes.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { loadReferenced, loadVisible, resourceEvent } from '../../common.js';
import { accountOf, reserveQuota } from '../../identity/quota/quota.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { admit } from '../volume/admit.js';
import { admitImage, type ImageRequest } from '../volume/image.js';
import {
  snapshotFamily as family,
  type SnapshotRow,
  type VolumeRow,
  volumeGone,
  volumeState,
} from '../volume/model.js';
import { volumeSchema } from '../volume/service.js';
import { claimVm, VM_OP_FROM, vmRefusal } from '../volume/vm-guard.js';
import { SNAPSHOT_FLOWS } from './flows.js';

export const snapshotSchema: KindSchema = {
  kind: 'volume-snapshots',
  table: 'volumeSnapshots',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    volumeUuid: 'uuid',
    parentUuid: 'uuid',
    primaryStorageUuid: 'uuid',
    size: 'int',
    state: { enum: ['Creating', 'Ready'] },
    latest: 'boolean',
    path: 'string',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    volume: { kind: 'volumes', local: 'volumeUuid', remote: 'uuid' },
    parent: { kind: 'volume-snapshots', local: 'parentUuid', remote: 'uuid' },
    children: { kind: 'volume-snapshots', local: 'uuid', remote: 'parentUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export class SnapshotService implements KindService {
  readonly contract = contract;
  readonly schema = snapshotSchema;
  readonly actions: Record<string, Operation>;

  constructor(private readonly ctx: ServiceContext) {
    for (const flow of SNAPSHOT_FLOWS) ctx.engine.register(flow);
    this.actions = {
      revert: (c, uuid) => this.revert(c, uuid),
      'create-image': (c, uuid, body) => this.createImage(c, uuid, body as unknown as ImageRequest),
    };
  }

  private async load(caller: Caller, uuid: string): Promise<SnapshotRow> {
    return (await loadVisible(this.ctx, snapshotSchema, uuid, caller)) as unknown as SnapshotRow;
  }

  private async volume(uuid: string): Promise<VolumeRow> {
    const v = await this.ctx.db.selectFrom('volumes').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    if (!v) throw volumeGone(uuid);
    return v;
  }

  async create(caller: Caller, body: Record<string, unknown>) {
    const v = (await loadReferenced(
      this.ctx,
      volumeSchema,
      body.volumeUuid as string,
      caller,
      'volumeUuid',
    )) as unknown as VolumeRow;
    volumeState(v, 'snapshot', ['Ready']);
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      accountUuid: v.accountUuid,
      volumeUuid: v.uuid,
      parentUuid: null,
      primaryStorageUuid: v.primaryStorageUuid,
      size: 0,
      state: 'Creating',
      latest: false,
    };
    return admit(this.ctx, caller, {
      family,
      kind: 'volume-snapshot.create',
      resource: row,
      queueKey: `volume:${v.uuid}`,
      params: { volumeUuid: v.uuid },
      done: ['create-record'],
      prepare: async (tx, batch) => {
        await reserveQuota(tx, await accountOf(tx, v.accountUuid), { 'snapshot.num': 1 });
        await tx.insertInto('volumeSnapshots').values(row).execute();
        batch.add(resourceEvent(family, row, 'created', { name: row.name, volumeUuid: v.uuid }));
      },
    });
  }

  update: Operation = async (caller, uuid, body) => {
    const s = await this.load(caller, uuid);
    return admit(this.ctx, caller, {
      family,
      kind: 'volume-snapshot.update',
      resource: s,
      params: { changes: body },
    });
  };

  /** Deletes the snapshot with its whole subtree (ZStack's rule): descendants depend on it. */
  async remove(caller: Caller, uuid: string) {
    const s = await this.load(caller, uuid);
    return admit(this.ctx, caller, {
      family,
      kind: 'volume-snapshot.delete',
      resource: s,
      queueKey: `volume:${s.volumeUuid}`,
      params: { volumeUuid: s.volumeUuid },
    });
  }

  private async revert(caller: Caller, uuid: string) {
    const s = await this.load(caller, uuid);
    if (s.state !== 'Ready') {
      throw new CloudError('Conflict', 'VOLUME_SNAPSHOT_NOT_READY', `snapshot ${uuid} is ${s.state}`, {
        details: { state: s.state },
      });
    }
    const v = await this.volume(s.volumeUuid);
    volumeState(v, 'revert', ['Ready']);
    const vmUuid = v.vmUuid;
    if (vmUuid) {
      const vm = await this.ctx.db
        .selectFrom('vms')
        .select(['uuid', 'state', 'task'])
        .where('uuid', '=', vmUuid)
        .executeTakeFirst();
      if (vm && !VM_OP_FROM['revert-volume'].includes(vm.state as never))
        throw vmRefusal(vm, 'revert-volume');
    }
    return admit(this.ctx, caller, {
      family,
      kind: 'volume-snapshot.revert',
      resource: s,
      vmUuid,
      queueKey: `volume:${v.uuid}`,
      params: { volumeUuid: v.uuid, vmUuid },
      done: ['claim-vm'],
      prepare: async (tx) => {
        if (vmUuid) await claimVm(tx, vmUuid, 'revert-volume');
      },
    });
  }

  private async createImage(caller: Caller, uuid: string, body: ImageRequest) {
    const s = await this.load(caller, uuid);
    if (s.state !== 'Ready') {
      throw new CloudError('Conflict', 'VOLUME_SNAPSHOT_NOT_READY', `snapshot ${uuid} is ${s.state}`, {
        details: { state: s.state },
      });
    }
    const v = await this.volume(s.volumeUuid);
    const vm = v.vmUuid
      ? await this.ctx.db.selectFrom('vms').select('platform').where('uuid', '=', v.vmUuid).executeTakeFirst()
      : undefined;
    const imageUuid = newId();
    return admit(this.ctx, caller, {
      family,
      kind: 'volume-snapshot.create-image',
      resource: s,
      queueKey: `volume:${v.uuid}`,
      params: { imageUuid, volumeUuid: v.uuid },
      done: ['record-image'],
      prepare: async (tx) => {
        await admitImage(tx, {
          imageUuid,
          body,
          volume: v,
          url: `snapshot://${s.uuid}`,
          platform: vm?.platform ?? null,
        });
      },
    });
  }
}
