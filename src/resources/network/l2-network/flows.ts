/**
 * L2 networks' own steps: field rules per type, the lowest free VNI of a pool, and the
 * attach-cluster / detach-cluster flows.
 */
import { sql } from 'kysely';
import { isUniqueViolation } from '../../../db/errors.js';
import type { Executor } from '../../../db/transaction.js';
import type { FlowDef } from '../../../engine/flow.js';
import { CloudError, type FieldProblem, notFound } from '../../../kernel/errors.js';
import { type Family, readRow, resourceEvent } from '../../common.js';
import { assertClusterInZone } from '../../compute/cluster/in-zone.js';
import type { FlowDeps } from '../../service.js';

export const l2NetworkFamily: Family = { singular: 'l2-network', kind: 'l2-networks', table: 'l2Networks' };

/** Every field that does not fit the type, at once. */
export function l2FieldProblems(body: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const type = body.type as string;
  const need = (field: string) => {
    if (body[field] === undefined) problems.push({ field, problem: `required for a ${type} L2 network` });
  };
  const refuse = (field: string) => {
    if (body[field] !== undefined) problems.push({ field, problem: `not allowed for a ${type} L2 network` });
  };
  if (type === 'no-vlan') {
    need('physicalInterface');
    for (const f of ['vlan', 'vxlanPoolUuid', 'vni']) refuse(f);
  } else if (type === 'vlan') {
    need('physicalInterface');
    need('vlan');
    for (const f of ['vxlanPoolUuid', 'vni']) refuse(f);
  } else {
    need('vxlanPoolUuid');
    refuse('vlan');
  }
  return problems;
}

/** Maps the unique indexes of l2_networks to what clashed. */
export function mapL2Unique(err: unknown): unknown {
  if (isUniqueViolation(err, 'l2_networks_interface_key'))
    return new CloudError(
      'AlreadyExists',
      'L2_NETWORK_INTERFACE_TAKEN',
      'an L2 network on this interface and VLAN already exists in the zone',
      { details: { constraint: 'l2_networks_interface_key' } },
    );
  if (isUniqueViolation(err, 'l2_networks_vni_key'))
    return new CloudError('AlreadyExists', 'L2_NETWORK_VNI_TAKEN', 'another L2 network has this VNI', {
      details: { constraint: 'l2_networks_vni_key' },
    });
  return err;
}

/**
 * The lowest VNI of the pool no L2 holds (a gap query over l2_networks_vni_key), or undefined.
 * Only a guide: the INSERT's unique violation decides, and the caller retries with a new one.
 */
export async function lowestFreeVni(db: Executor, pool: { vniStart: number; vniEnd: number }) {
  const { rows } = await sql<{ vni: number | null }>`
    select min(c) as vni from (
      select ${pool.vniStart}::integer as c
        where not exists (select 1 from l2_networks x where x.vni = ${pool.vniStart})
      union all
      (select l.vni + 1 from l2_networks l
        where l.vni >= ${pool.vniStart} and l.vni < ${pool.vniEnd}
          and not exists (select 1 from l2_networks m where m.vni = l.vni + 1)
        order by l.vni limit 1)
    ) free`.execute(db);
  return rows[0]?.vni ?? undefined;
}

export interface ClusterParams {
  uuid: string;
  clusterUuid: string;
}

/** The cluster exists and is in the L2's zone (checked at admission and in the step). */
export function checkCluster(
  exec: Executor,
  owner: { uuid: string; zoneUuid: string },
  clusterUuid: string,
): Promise<void> {
  return assertClusterInZone(exec, owner, clusterUuid, 'L2 network', 'L2_NETWORK_ZONE_MISMATCH');
}

async function l2For(db: Executor, uuid: string) {
  const l2 = await db
    .selectFrom('l2Networks')
    .select(['uuid', 'zoneUuid', 'accountUuid'])
    .where('uuid', '=', uuid)
    .forShare()
    .executeTakeFirst();
  if (!l2) throw notFound('l2-network', uuid);
  return l2;
}

const result = (ctx: { db: unknown; params: { uuid: string } }) =>
  readRow(ctx.db, 'l2NetworksWithClusters', ctx.params.uuid);

export const attachClusterFlow: FlowDef<ClusterParams, FlowDeps> = {
  kind: 'l2-network.attach-cluster',
  recovery: 'resume',
  steps: [
    {
      name: 'attach',
      describe: 'attach the L2 network to the cluster',
      async run(ctx) {
        const { uuid, clusterUuid } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const l2 = await l2For(tx, uuid);
          await checkCluster(tx, l2, clusterUuid);
          const res = await tx
            .insertInto('l2NetworkClusters')
            .values({ l2NetworkUuid: uuid, clusterUuid })
            .onConflict((oc) => oc.columns(['l2NetworkUuid', 'clusterUuid']).doNothing())
            .executeTakeFirst();
          // attaching twice is a no-op, without a second event
          if (Number(res.numInsertedOrUpdatedRows ?? 0) > 0)
            batch.add({
              ...resourceEvent(l2NetworkFamily, l2, 'cluster.attached', { clusterUuid }),
              jobUuid: ctx.job.uuid,
            });
        });
      },
    },
  ],
  result,
};

export const detachClusterFlow: FlowDef<ClusterParams, FlowDeps> = {
  kind: 'l2-network.detach-cluster',
  recovery: 'resume',
  steps: [
    {
      name: 'detach',
      describe: 'detach the L2 network from the cluster',
      async run(ctx) {
        const { uuid, clusterUuid } = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const l2 = await l2For(tx, uuid);
          // the attachment row is locked while NICs are counted: two detaches serialize on it
          await tx
            .selectFrom('l2NetworkClusters')
            .select('clusterUuid')
            .where('l2NetworkUuid', '=', uuid)
            .where('clusterUuid', '=', clusterUuid)
            .forUpdate()
            .execute();
          const inUse = await tx
            .selectFrom('vmNics as n')
            .innerJoin('vms as v', 'v.uuid', 'n.vmUuid')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('n.l2NetworkUuid', '=', uuid)
            .where('v.clusterUuid', '=', clusterUuid)
            .executeTakeFirstOrThrow();
          const nics = Number(inUse.n);
          if (nics > 0)
            throw new CloudError(
              'Conflict',
              'L2_NETWORK_IN_USE',
              `${nics} NIC(s) of VMs in cluster ${clusterUuid} are on L2 network ${uuid}; detach or expunge them first`,
              { details: { nics, clusterUuid } },
            );
          const res = await tx
            .deleteFrom('l2NetworkClusters')
            .where('l2NetworkUuid', '=', uuid)
            .where('clusterUuid', '=', clusterUuid)
            .executeTakeFirst();
          if (Number(res.numDeletedRows) > 0)
            batch.add({
              ...resourceEvent(l2NetworkFamily, l2, 'cluster.detached', { clusterUuid }),
              jobUuid: ctx.job.uuid,
            });
        });
      },
    },
  ],
  result,
};
