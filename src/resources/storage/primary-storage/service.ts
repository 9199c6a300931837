/**
 * Primary storages: where volumes and image caches live. Admin-only. Types: `local` (a disk in
 * every host: `capacity` is each host's share, accounted per host once the storage is attached
 * to the host's cluster; a volume on it is bound to its host) and the shared types `nfs`,
 * `shared-mount` and `ceph` (one capacity for the storage; volumes may move between the hosts of
 * the clusters it is attached to). All simulated for now: adding one records it (Connected).
 *
 * Lists and GETs read `primary_storages_with_capacity` (migration 0003), where totals of local
 * storage are sums over its hosts: capacityAvailable = capacityTotal × overProvisioningRatio −
 * capacityUsed. Reservations are capacity.ts's single conditional UPDATEs.
 * Delete is refused while the storage has volumes, cached images or attached clusters.
 */
import { primaryStorages as contract } from '../../../contract/storage.js';
import { mapUnique } from '../../../db/errors.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalidField } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import {
  admitCreate,
  assertNoChildren,
  changeFlow,
  createRecordStep,
  deleteFlow,
  loadVisible,
  readRow,
  submitFor,
} from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import {
  attachClusterFlow,
  checkCapacityGrowth,
  checkCluster,
  cleanImageCacheFlow,
  detachClusterFlow,
  primaryStorageFamily as family,
  primaryStorageUpdateFlow,
} from './flows.js';
import { checkPrimaryStorageUrl } from './url.js';

const nameTaken = (err: unknown) =>
  mapUnique(err, 'PRIMARY_STORAGE_NAME_TAKEN', 'a primary storage with this name already exists');

const blockers = [
  { table: 'volumes' as const, column: 'primaryStorageUuid', what: 'volumes' },
  { table: 'imageCache' as const, column: 'primaryStorageUuid', what: 'image-cache' },
];

export const primaryStorageSchema: KindSchema = {
  kind: 'primary-storages',
  table: 'primaryStoragesWithCapacity',
  visibility: 'admin',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    type: { enum: ['local', 'nfs', 'shared-mount', 'ceph'] },
    url: 'string',
    capacity: 'int',
    capacityTotal: 'int',
    capacityUsed: 'int',
    capacityAvailable: 'int',
    overProvisioningRatio: 'number',
    state: { enum: ['Enabled', 'Disabled', 'Maintenance'] },
    status: { enum: ['Connecting', 'Connected', 'Disconnected'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    // q=clusterRefs.cluster.name=cluster-1: storages attached to a cluster
    clusterRefs: {
      kind: 'primary-storage-clusters',
      local: 'uuid',
      remote: 'primaryStorageUuid',
      many: true,
    },
    hostShares: { kind: 'primary-storage-hosts', local: 'uuid', remote: 'primaryStorageUuid', many: true },
  },
  defaultSort: 'createdAt',
};

/** Attachments and per-host shares: queryable through the storage's relations only. */
export const primaryStorageClusterSchema: KindSchema = {
  kind: 'primary-storage-clusters',
  table: 'primaryStorageClusters',
  visibility: 'admin',
  key: 'clusterUuid',
  fields: { primaryStorageUuid: 'uuid', clusterUuid: 'uuid' },
  relations: { cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' } },
};
export const primaryStorageHostSchema: KindSchema = {
  kind: 'primary-storage-hosts',
  table: 'primaryStorageHosts',
  visibility: 'admin',
  key: 'hostUuid',
  fields: { primaryStorageUuid: 'uuid', hostUuid: 'uuid', capacityTotal: 'int', capacityUsed: 'int' },
  relations: { host: { kind: 'hosts', local: 'hostUuid', remote: 'uuid' } },
};

const STATES = { enable: 'Enabled', disable: 'Disabled', maintain: 'Maintenance' } as const;

export class PrimaryStorageService implements KindService {
  readonly contract = contract;
  readonly schema = primaryStorageSchema;
  readonly actions: Record<string, Operation> = {};

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register({
      kind: 'primary-storage.create',
      recovery: 'resume',
      steps: [createRecordStep(family)],
      result: (c) => readRow(c.db, 'primaryStoragesWithCapacity', c.job.resourceUuid!),
    });
    ctx.engine.register(primaryStorageUpdateFlow);
    ctx.engine.register(attachClusterFlow);
    ctx.engine.register(detachClusterFlow);
    ctx.engine.register(cleanImageCacheFlow);
    ctx.engine.register(deleteFlow(family, blockers));
    for (const [action, state] of Object.entries(STATES)) {
      ctx.engine.register(changeFlow(family, `primary-storage.${action}`, 'state.changed'));
      this.actions[action] = async (caller, uuid) =>
        submitFor(ctx, family, caller, await this.load(caller, uuid), `primary-storage.${action}`, {
          changes: { state },
        });
    }
    const clusterAction =
      (action: 'attach-cluster' | 'detach-cluster'): Operation =>
      async (caller, uuid, body) => {
        const ps = await this.load(caller, uuid);
        const clusterUuid = body.clusterUuid as string;
        if (action === 'attach-cluster')
          await checkCluster(ctx.db, { uuid, zoneUuid: ps.zoneUuid as string }, clusterUuid);
        return submitFor(ctx, family, caller, ps, `primary-storage.${action}`, { clusterUuid });
      };
    this.actions['attach-cluster'] = clusterAction('attach-cluster');
    this.actions['detach-cluster'] = clusterAction('detach-cluster');
    this.actions['clean-image-cache'] = async (caller, uuid) =>
      submitFor(ctx, family, caller, await this.load(caller, uuid), 'primary-storage.clean-image-cache');
  }

  private load(caller: Caller, uuid: string) {
    return loadVisible(this.ctx, primaryStorageSchema, uuid, caller);
  }

  create(caller: Caller, body: Record<string, unknown>) {
    checkPrimaryStorageUrl(body.type as string, body.url as string);
    const zoneUuid = body.zoneUuid as string;
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string) ?? null,
      zoneUuid,
      type: body.type as 'local',
      url: body.url as string,
      capacityTotal: body.capacity as number,
      overProvisioningRatio: (body.overProvisioningRatio as number) ?? 1,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(
      this.ctx,
      family,
      caller,
      row,
      {},
      {
        check: async (tx) => {
          const zone = await tx
            .selectFrom('zones')
            .select('uuid')
            .where('uuid', '=', zoneUuid)
            .forShare()
            .executeTakeFirst();
          if (!zone) throw invalidField('zoneUuid', `no zone ${zoneUuid}`, 'ZONE_NOT_FOUND');
        },
        mapError: nameTaken,
      },
    );
  }

  update: Operation = async (caller, uuid, body) => {
    const ps = await this.load(caller, uuid);
    if (body.capacity !== undefined) checkCapacityGrowth(ps.capacity as number, body.capacity as number);
    return submitFor(this.ctx, family, caller, ps, 'primary-storage.update', { changes: body });
  };

  async remove(caller: Caller, uuid: string) {
    const ps = await this.load(caller, uuid);
    const attached = await this.ctx.db
      .selectFrom('primaryStorageClusters')
      .select('clusterUuid')
      .where('primaryStorageUuid', '=', uuid)
      .execute();
    if (attached.length > 0) {
      throw new CloudError(
        'Conflict',
        'PRIMARY_STORAGE_HAS_CLUSTERS',
        `primary storage ${uuid} is attached to ${attached.length} cluster(s); detach it first`,
        { details: { clusterUuids: attached.map((a) => a.clusterUuid) } },
      );
    }
    await assertNoChildren(this.ctx.db, family, uuid, blockers);
    return submitFor(this.ctx, family, caller, ps, 'primary-storage.delete');
  }

  /** One storage, with its clusters and (local storage) the share of each host. */
  async get(caller: Caller, uuid: string): Promise<unknown> {
    const ps = await this.load(caller, uuid);
    const [clusters, hosts] = await Promise.all([
      this.ctx.db
        .selectFrom('primaryStorageClusters')
        .select('clusterUuid')
        .where('primaryStorageUuid', '=', uuid)
        .orderBy('clusterUuid')
        .execute(),
      this.ctx.db
        .selectFrom('primaryStorageHosts')
        .select(['hostUuid', 'capacityTotal', 'capacityUsed'])
        .where('primaryStorageUuid', '=', uuid)
        .orderBy('hostUuid')
        .execute(),
    ]);
    const ratio = ps.overProvisioningRatio as number;
    return {
      ...ps,
      clusterUuids: clusters.map((c) => c.clusterUuid),
      ...(ps.type === 'local'
        ? {
            hosts: hosts.map((h) => ({
              ...h,
              capacityAvailable: Math.floor(h.capacityTotal * ratio) - h.capacityUsed,
            })),
          }
        : {}),
    };
  }
}
