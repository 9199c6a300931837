/**
 * Volumes as an API kind: data volumes created here (root volumes come with their VM), attached
 * and detached, grown, soft-deleted, recovered and expunged, imaged. Every refusal a request can
 * be given at once is given at admission, before any job exists; the chains re-check under the
 * same conditional UPDATEs. See model.ts for the invariants and flows.ts for the chains.
 */
import { volumes as contract } from '../../../contract/volumes.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, type FieldProblem, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { loadVisible, resourceEvent } from '../../common.js';
import { reserveQuota } from '../../identity/quota/quota.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { isLocal } from '../primary-storage/capacity.js';
import { admit } from './admit.js';
import { VOLUME_FLOWS } from './flows.js';
import { admitImage, type ImageRequest } from './image.js';
import {
  volumeFamily as family,
  presentVolume,
  type VolumeRow,
  volumeFormatOn,
  volumeState,
} from './model.js';
import { placeVolume } from './placement.js';
import { reapExpiredVolumes } from './reaper.js';
import { claimVm, VM_OP_FROM, type VmRow, visibleVm, vmRefusal } from './vm-guard.js';

export const volumeSchema: KindSchema = {
  kind: 'volumes',
  table: 'volumes',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    type: { enum: ['Root', 'Data'] },
    state: { enum: ['Creating', 'Ready', 'Deleted', 'Expunging'] },
    vmUuid: 'uuid',
    deviceId: 'int',
    primaryStorageUuid: 'uuid',
    hostUuid: 'uuid',
    diskOfferingUuid: 'uuid',
    imageUuid: 'uuid',
    size: 'int',
    actualSize: 'int',
    format: 'string',
    path: 'string',
    deleteWithVm: 'boolean',
    deletedAt: 'timestamp',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    vm: { kind: 'vms', local: 'vmUuid', remote: 'uuid' },
    primaryStorage: { kind: 'primary-storages', local: 'primaryStorageUuid', remote: 'uuid' },
    host: { kind: 'hosts', local: 'hostUuid', remote: 'uuid' },
    diskOffering: { kind: 'disk-offerings', local: 'diskOfferingUuid', remote: 'uuid' },
    snapshots: { kind: 'volume-snapshots', local: 'uuid', remote: 'volumeUuid', many: true },
  },
  defaultSort: 'createdAt',
};

const conflict = (code: string, message: string, details: Record<string, unknown> = {}) =>
  new CloudError('Conflict', code, message, { details });

export class VolumeService implements KindService {
  readonly contract = contract;
  readonly schema = volumeSchema;
  readonly present = presentVolume;
  readonly actions: Record<string, Operation>;

  private readonly reaper: PeriodicTask;

  constructor(private readonly ctx: ServiceContext) {
    for (const flow of VOLUME_FLOWS) ctx.engine.register(flow);
    this.reaper = new PeriodicTask(
      ctx.deps.settings.reaperIntervalSeconds * 1000,
      () => reapExpiredVolumes(ctx, ctx.deps.settings),
      (err) => ctx.deps.log.warn({ err }, 'volume reaper pass failed'),
    );
    this.actions = {
      attach: (c, uuid, body) => this.attach(c, uuid, body.vmUuid as string),
      detach: (c, uuid) => this.detach(c, uuid),
      resize: (c, uuid, body) => this.resize(c, uuid, body.size as number),
      recover: (c, uuid) => this.simple(c, uuid, 'recover', ['Deleted']),
      expunge: (c, uuid) => this.simple(c, uuid, 'expunge', ['Deleted', 'Expunging']),
      'create-image': (c, uuid, body) => this.createImage(c, uuid, body as unknown as ImageRequest),
    };
  }

  /** expunges volumes Deleted for longer than settings.retentionSeconds */
  start(): void {
    this.reaper.start();
  }

  stop(): Promise<void> {
    return this.reaper.stop();
  }

  private async load(caller: Caller, uuid: string): Promise<VolumeRow> {
    return (await loadVisible(this.ctx, volumeSchema, uuid, caller)) as unknown as VolumeRow;
  }

  async create(caller: Caller, body: Record<string, unknown>) {
    const problems: FieldProblem[] = [];
    const offeringUuid = body.diskOfferingUuid as string | undefined;
    let size = body.size as number | undefined;
    if ((offeringUuid === undefined) === (size === undefined)) {
      const problem = 'give exactly one of diskOfferingUuid and size';
      problems.push({ field: 'diskOfferingUuid', problem }, { field: 'size', problem });
    }
    if (offeringUuid !== undefined) {
      const offering = await this.ctx.db
        .selectFrom('diskOfferings')
        .select(['size', 'state'])
        .where('uuid', '=', offeringUuid)
        .executeTakeFirst();
      if (!offering)
        problems.push({ field: 'diskOfferingUuid', problem: `no disk offering ${offeringUuid}` });
      else if (offering.state !== 'Enabled')
        problems.push({ field: 'diskOfferingUuid', problem: `disk offering is ${offering.state}` });
      else size = offering.size;
    }
    if (problems.length > 0 || size === undefined) throw invalid(problems);
    const vmUuid = (body.vmUuid as string | undefined) ?? null;
    const vm = vmUuid ? await visibleVm(this.ctx.db, caller, vmUuid) : undefined;
    if (vm) sameAccount(vm, caller.accountUuid);
    const bytes = size;
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      accountUuid: caller.accountUuid,
      type: 'Data' as const,
      size: bytes,
      // the storage's own format rule applies once the storage is chosen (volumeFormatOn)
      format: (body.format as string | undefined) ?? 'qcow2',
      state: 'Creating',
      deleteWithVm: (body.deleteWithVm as boolean | undefined) ?? false,
      diskOfferingUuid: offeringUuid ?? null,
    };
    return admit(this.ctx, caller, {
      family,
      kind: 'volume.create',
      resource: row,
      vmUuid,
      params: { vmUuid },
      done: ['create-record', 'claim-vm'],
      prepare: async (tx, batch) => {
        // quota first, then the VM, then capacity: every admission takes its locks in this order
        await reserveQuota(
          tx,
          { uuid: caller.accountUuid, isAdmin: caller.isAdmin },
          {
            'volume.data.num': 1,
            'volume.capacity': bytes,
          },
        );
        const held = vm ? await claimVm(tx, vm.uuid, 'attach-volume') : undefined;
        const target = await placeVolume(tx, {
          size: bytes,
          ...(body.primaryStorageUuid ? { primaryStorageUuid: body.primaryStorageUuid as string } : {}),
          ...(held
            ? {
                vm: {
                  uuid: held.uuid,
                  clusterUuid: held.clusterUuid,
                  hostUuid: held.hostUuid ?? held.lastHostUuid,
                },
              }
            : {}),
        });
        const storage = await tx
          .selectFrom('primaryStorages')
          .select('type')
          .where('uuid', '=', target.primaryStorageUuid)
          .executeTakeFirstOrThrow();
        row.format = volumeFormatOn(storage.type, body.format as string | undefined);
        await tx
          .insertInto('volumes')
          .values({ ...row, ...target })
          .execute();
        batch.add(resourceEvent(family, row, 'created', { name: row.name, size: bytes, ...target }));
      },
    });
  }

  update: Operation = async (caller, uuid, body) => {
    const v = await this.load(caller, uuid);
    return admit(this.ctx, caller, { family, kind: 'volume.update', resource: v, params: { changes: body } });
  };

  /** Soft delete: detached first when attached; recoverable until expunged. */
  async remove(caller: Caller, uuid: string) {
    const v = await this.load(caller, uuid);
    if (v.type === 'Root') {
      throw conflict(
        'VOLUME_ROOT_NOT_DELETABLE',
        `volume ${uuid} is the root volume of vm ${v.vmUuid}; destroy the VM instead`,
        {
          vmUuid: v.vmUuid,
        },
      );
    }
    volumeState(v, 'delete', ['Ready']);
    return admit(this.ctx, caller, {
      family,
      kind: 'volume.delete',
      resource: v,
      vmUuid: v.vmUuid,
      params: { vmUuid: v.vmUuid, deviceId: v.deviceId },
      done: ['claim-vm'],
      prepare: async (tx) => {
        if (v.vmUuid) await claimVm(tx, v.vmUuid, 'detach-volume');
      },
    });
  }

  private async attach(caller: Caller, uuid: string, vmUuid: string) {
    const v = await this.load(caller, uuid);
    if (v.type === 'Root')
      throw conflict(
        'VOLUME_ROOT_NOT_ATTACHABLE',
        `volume ${uuid} is a root volume; only data volumes move between VMs`,
      );
    volumeState(v, 'attach', ['Ready']);
    if (v.vmUuid) {
      throw conflict(
        'VOLUME_ALREADY_ATTACHED',
        `volume ${uuid} is attached to vm ${v.vmUuid} (device ${v.deviceId}); detach it first`,
        {
          vmUuid: v.vmUuid,
        },
      );
    }
    const vm = await visibleVm(this.ctx.db, caller, vmUuid);
    sameAccount(vm, v.accountUuid);
    if (!VM_OP_FROM['attach-volume'].includes(vm.state as never)) throw vmRefusal(vm, 'attach-volume');
    await this.checkReach(v, vm);
    return admit(this.ctx, caller, {
      family,
      kind: 'volume.attach',
      resource: v,
      vmUuid,
      params: { vmUuid },
      done: ['claim-vm'],
      prepare: async (tx) => {
        await claimVm(tx, vmUuid, 'attach-volume');
      },
    });
  }

  /** Local storage binds a volume to its host; shared storage must be attached to the VM's cluster. */
  private async checkReach(v: VolumeRow, vm: VmRow): Promise<void> {
    const ps = await this.ctx.db
      .selectFrom('primaryStorages')
      .select(['type'])
      .where('uuid', '=', v.primaryStorageUuid ?? '00000000-0000-0000-0000-000000000000')
      .executeTakeFirst();
    if (!ps) return;
    const vmHost = vm.hostUuid ?? vm.lastHostUuid;
    if (isLocal(ps.type)) {
      if (vmHost !== v.hostUuid) {
        throw conflict(
          'VOLUME_HOST_MISMATCH',
          `volume ${v.uuid} is on local storage of host ${v.hostUuid}; vm ${vm.uuid} is on ${vmHost ?? 'no host'}`,
          { volumeHostUuid: v.hostUuid, vmHostUuid: vmHost },
        );
      }
      return;
    }
    const reach = await this.ctx.db
      .selectFrom('primaryStorageClusters')
      .select('clusterUuid')
      .where('primaryStorageUuid', '=', v.primaryStorageUuid!)
      .where('clusterUuid', '=', vm.clusterUuid ?? '00000000-0000-0000-0000-000000000000')
      .executeTakeFirst();
    if (!reach) {
      throw conflict(
        'VOLUME_STORAGE_UNREACHABLE',
        `primary storage ${v.primaryStorageUuid} of volume ${v.uuid} is not attached to the cluster of vm ${vm.uuid}`,
        { primaryStorageUuid: v.primaryStorageUuid, clusterUuid: vm.clusterUuid },
      );
    }
  }

  private async detach(caller: Caller, uuid: string) {
    const v = await this.load(caller, uuid);
    if (v.type === 'Root')
      throw conflict(
        'VOLUME_ROOT_NOT_DETACHABLE',
        `volume ${uuid} is the root volume of vm ${v.vmUuid}; it cannot be detached`,
      );
    if (!v.vmUuid) throw conflict('VOLUME_NOT_ATTACHED', `volume ${uuid} is not attached to a VM`);
    const vmUuid = v.vmUuid;
    return admit(this.ctx, caller, {
      family,
      kind: 'volume.detach',
      resource: v,
      vmUuid,
      params: { vmUuid, deviceId: v.deviceId },
      done: ['claim-vm'],
      prepare: async (tx) => {
        await claimVm(tx, vmUuid, 'detach-volume');
      },
    });
  }

  private async resize(caller: Caller, uuid: string, size: number) {
    const v = await this.load(caller, uuid);
    volumeState(v, 'resize', ['Ready']);
    if (size <= v.size) {
      throw invalid(
        [{ field: 'size', problem: `must be more than the current ${v.size} bytes (volumes only grow)` }],
        'VOLUME_SHRINK_REFUSED',
      );
    }
    return admit(this.ctx, caller, { family, kind: 'volume.resize', resource: v, params: { size } });
  }

  private async simple(
    caller: Caller,
    uuid: string,
    op: 'recover' | 'expunge',
    needs: Array<'Deleted' | 'Expunging'>,
  ) {
    const v = await this.load(caller, uuid);
    volumeState(v, op, needs);
    return admit(this.ctx, caller, { family, kind: `volume.${op}`, resource: v });
  }

  private async createImage(caller: Caller, uuid: string, body: ImageRequest) {
    const v = await this.load(caller, uuid);
    if (v.type !== 'Root') {
      throw invalid(
        [{ field: 'uuid', problem: 'images are made from root volumes (or from snapshots)' }],
        'VOLUME_NOT_ROOT',
      );
    }
    volumeState(v, 'create-image', ['Ready']);
    const vm = v.vmUuid
      ? await this.ctx.db.selectFrom('vms').selectAll().where('uuid', '=', v.vmUuid).executeTakeFirst()
      : undefined;
    if (vm && !VM_OP_FROM['create-image'].includes(vm.state as never)) throw vmRefusal(vm, 'create-image');
    const imageUuid = newId();
    return admit(this.ctx, caller, {
      family,
      kind: 'volume.create-image',
      resource: v,
      vmUuid: vm?.uuid ?? null,
      params: { imageUuid, vmUuid: vm?.uuid ?? null },
      done: ['record-image', 'claim-vm'],
      prepare: async (tx) => {
        // the quota row first, as every admission does
        await admitImage(tx, {
          imageUuid,
          body,
          volume: v,
          url: `volume://${v.uuid}`,
          platform: vm?.platform ?? null,
        });
        if (vm) await claimVm(tx, vm.uuid, 'create-image');
      },
    });
  }
}

function sameAccount(vm: VmRow, accountUuid: string): void {
  if (vm.accountUuid !== accountUuid) {
    throw new CloudError(
      'Conflict',
      'VOLUME_ACCOUNT_MISMATCH',
      `vm ${vm.uuid} belongs to another account than the volume`,
      {
        details: { vmAccountUuid: vm.accountUuid, volumeAccountUuid: accountUuid },
      },
    );
  }
}
