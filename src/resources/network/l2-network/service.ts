/**
 * L2 networks (docs/network.md "L2 networks"): no-vlan (a host interface), vlan (interface +
 * VLAN) or vxlan (a VNI of a pool: given, or the lowest free one). Admin-managed, visible to
 * every account. Duplicates are refused by the unique indexes (L2_NETWORK_INTERFACE_TAKEN,
 * L2_NETWORK_VNI_TAKEN). A free VNI is taken without any counter row: the create INSERTs the
 * lowest free candidate and, on losing it to a concurrent create (the VNI index's unique
 * violation), tries the next one. Lists and GETs read `l2_networks_with_clusters`
 * (clusterUuids). Delete is refused while L3 networks are on it or clusters are attached.
 */
import { l2Networks as contract } from '../../../contract/network.js';
import { isUniqueViolation } from '../../../db/errors.js';
import type { L2Type } from '../../../db/schema.js';
import type { Tx } from '../../../db/transaction.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalid, invalidField } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, loadVisible, submitFor } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { standardOperations } from '../../standard.js';
import {
  attachClusterFlow,
  checkCluster,
  detachClusterFlow,
  l2NetworkFamily as family,
  l2FieldProblems,
  lowestFreeVni,
  mapL2Unique,
} from './flows.js';

export const l2NetworkSchema: KindSchema = {
  kind: 'l2-networks',
  table: 'l2NetworksWithClusters',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    type: { enum: ['no-vlan', 'vlan', 'vxlan'] },
    physicalInterface: 'string',
    vlan: 'int',
    vni: 'int',
    vxlanPoolUuid: 'uuid',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  selectOnly: ['clusterUuids'],
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    vxlanPool: { kind: 'vxlan-pools', local: 'vxlanPoolUuid', remote: 'uuid' },
    l3Networks: { kind: 'l3-networks', local: 'uuid', remote: 'l2NetworkUuid', many: true },
    // q=clusterRefs.clusterUuid=…: L2s attached to a cluster
    clusterRefs: { kind: 'l2-network-clusters', local: 'uuid', remote: 'l2NetworkUuid', many: true },
  },
  defaultSort: 'createdAt',
};

/** Attachments: queryable through the L2's relation only. */
export const l2NetworkClusterSchema: KindSchema = {
  kind: 'l2-network-clusters',
  table: 'l2NetworkClusters',
  visibility: 'shared',
  key: 'clusterUuid',
  fields: { l2NetworkUuid: 'uuid', clusterUuid: 'uuid' },
  relations: { cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' } },
};

/** VNIs tried before giving up when concurrent creates keep taking the lowest free one */
const VNI_ATTEMPTS = 32;

export class L2NetworkService implements KindService {
  readonly contract = contract;
  readonly schema = l2NetworkSchema;
  readonly update: Operation;
  readonly remove: NonNullable<KindService['remove']>;
  readonly actions: Record<string, Operation>;

  constructor(private readonly ctx: ServiceContext) {
    const ops = standardOperations(ctx, {
      family,
      schema: l2NetworkSchema,
      simpleCreate: true,
      blockers: [
        { table: 'l3Networks', column: 'l2NetworkUuid', what: 'l3-networks' },
        {
          table: 'l2NetworkClusters',
          column: 'l2NetworkUuid',
          what: 'clusters',
          remedy: 'detach them first',
        },
      ],
    });
    this.update = ops.update;
    this.remove = ops.remove;
    ctx.engine.register(attachClusterFlow);
    ctx.engine.register(detachClusterFlow);
    const clusterAction =
      (action: 'attach-cluster' | 'detach-cluster'): Operation =>
      async (caller, uuid, body) => {
        const l2 = await loadVisible(ctx, l2NetworkSchema, uuid, caller);
        const clusterUuid = body.clusterUuid as string;
        if (action === 'attach-cluster')
          await checkCluster(ctx.db, { uuid, zoneUuid: l2.zoneUuid as string }, clusterUuid);
        return submitFor(ctx, family, caller, l2, `l2-network.${action}`, { clusterUuid });
      };
    this.actions = {
      'attach-cluster': clusterAction('attach-cluster'),
      'detach-cluster': clusterAction('detach-cluster'),
    };
  }

  async create(caller: Caller, body: Record<string, unknown>): Promise<JobRow> {
    const problems = l2FieldProblems(body);
    if (problems.length > 0) throw invalid(problems);
    const zoneUuid = body.zoneUuid as string;
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      zoneUuid,
      type: body.type as L2Type,
      physicalInterface: (body.physicalInterface as string | undefined) ?? null,
      vlan: (body.vlan as number | undefined) ?? null,
      vni: (body.vni as number | undefined) ?? null,
      vxlanPoolUuid: (body.vxlanPoolUuid as string | undefined) ?? null,
      accountUuid: caller.accountUuid,
    };
    // the VNI loop below needs the raw unique violation, so it maps errors itself
    const admit = (mapError?: (err: unknown) => unknown) =>
      admitCreate(this.ctx, family, caller, row, body, {
        check: (tx) => this.check(tx, row),
        ...(mapError ? { mapError } : {}),
      });
    if (row.type !== 'vxlan' || row.vni !== null) return admit(mapL2Unique);

    const pool = await this.ctx.db
      .selectFrom('vxlanPools')
      .select(['uuid', 'zoneUuid', 'vniStart', 'vniEnd'])
      .where('uuid', '=', row.vxlanPoolUuid!)
      .executeTakeFirst();
    if (!pool)
      throw invalidField('vxlanPoolUuid', `no VXLAN pool ${row.vxlanPoolUuid}`, 'VXLAN_POOL_NOT_FOUND');
    for (let attempt = 0; attempt < VNI_ATTEMPTS; attempt++) {
      const vni = await lowestFreeVni(this.ctx.db, pool);
      if (vni === undefined) break;
      row.vni = vni;
      try {
        return await admit();
      } catch (err) {
        // another create took this VNI between the query and the INSERT: take the next one
        if (!isUniqueViolation(err, 'l2_networks_vni_key')) throw mapL2Unique(err);
      }
    }
    throw new CloudError('Conflict', 'VXLAN_POOL_EXHAUSTED', `VXLAN pool ${pool.uuid} has no free VNI`, {
      details: { vxlanPoolUuid: pool.uuid },
    });
  }

  /** In the creating transaction: the zone exists; a vxlan L2's pool is in it and holds the VNI. */
  private async check(
    tx: Tx,
    row: { zoneUuid: string; vxlanPoolUuid: string | null; vni: number | null },
  ): Promise<void> {
    const zone = await tx
      .selectFrom('zones')
      .select('uuid')
      .where('uuid', '=', row.zoneUuid)
      .forShare()
      .executeTakeFirst();
    if (!zone) throw invalidField('zoneUuid', `no zone ${row.zoneUuid}`, 'ZONE_NOT_FOUND');
    if (row.vxlanPoolUuid === null) return;
    const pool = await tx
      .selectFrom('vxlanPools')
      .select(['uuid', 'zoneUuid', 'vniStart', 'vniEnd'])
      .where('uuid', '=', row.vxlanPoolUuid)
      .forShare()
      .executeTakeFirst();
    if (!pool)
      throw invalidField('vxlanPoolUuid', `no VXLAN pool ${row.vxlanPoolUuid}`, 'VXLAN_POOL_NOT_FOUND');
    const problems = [];
    if (pool.zoneUuid !== row.zoneUuid)
      problems.push({
        field: 'vxlanPoolUuid',
        problem: `pool ${pool.uuid} is in zone ${pool.zoneUuid}, not ${row.zoneUuid}`,
      });
    if (row.vni !== null && (row.vni < pool.vniStart || row.vni > pool.vniEnd))
      problems.push({
        field: 'vni',
        problem: `must be within the pool's range ${pool.vniStart}-${pool.vniEnd}`,
      });
    if (problems.length > 0) throw invalid(problems);
  }
}
