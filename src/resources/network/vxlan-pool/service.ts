/**
 * VXLAN pools: ranges of VNIs in a zone, from which vxlan L2 networks take theirs. Admin-managed,
 * visible to every account. Pools of one zone never overlap (VXLAN_POOL_OVERLAPS, checked under a
 * per-zone advisory lock so two concurrent creates cannot both pass); a pool with L2 networks
 * cannot be deleted.
 */
import { sql } from 'kysely';
import { vxlanPools as contract } from '../../../contract/network.js';
import { mapUnique } from '../../../db/errors.js';
import type { Tx } from '../../../db/transaction.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import { CloudError, invalid, invalidField } from '../../../kernel/errors.js';
import type { Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { standardKind } from '../../standard.js';

export const vxlanPoolFamily: Family = { singular: 'vxlan-pool', kind: 'vxlan-pools', table: 'vxlanPools' };

export const vxlanPoolSchema: KindSchema = {
  kind: 'vxlan-pools',
  table: 'vxlanPools',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    vniStart: 'int',
    vniEnd: 'int',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    l2Networks: { kind: 'l2-networks', local: 'uuid', remote: 'vxlanPoolUuid', many: true },
  },
  defaultSort: 'createdAt',
};

const nameTaken = (err: unknown) =>
  mapUnique(err, 'VXLAN_POOL_NAME_TAKEN', 'a VXLAN pool with this name already exists in the zone');

async function checkPool(tx: Tx, body: Record<string, unknown>): Promise<void> {
  const zoneUuid = body.zoneUuid as string;
  const start = body.vniStart as number;
  const end = body.vniEnd as number;
  if (start > end) throw invalid([{ field: 'vniEnd', problem: `must be at least vniStart (${start})` }]);
  const zone = await tx
    .selectFrom('zones')
    .select('uuid')
    .where('uuid', '=', zoneUuid)
    .forShare()
    .executeTakeFirst();
  if (!zone) throw invalidField('zoneUuid', `no zone ${zoneUuid}`, 'ZONE_NOT_FOUND');
  // one pool create per zone at a time: the overlap check below then sees every committed pool
  await sql`select pg_advisory_xact_lock(hashtext(${`vxlan-pool:${zoneUuid}`}))`.execute(tx);
  const clash = await tx
    .selectFrom('vxlanPools')
    .select(['uuid', 'vniStart', 'vniEnd'])
    .where('zoneUuid', '=', zoneUuid)
    .where('vniStart', '<=', end)
    .where('vniEnd', '>=', start)
    .executeTakeFirst();
  if (clash)
    throw new CloudError(
      'Conflict',
      'VXLAN_POOL_OVERLAPS',
      `VNIs ${start}-${end} overlap pool ${clash.uuid} (${clash.vniStart}-${clash.vniEnd}) of zone ${zoneUuid}`,
      { details: { vxlanPoolUuid: clash.uuid } },
    );
}

export function vxlanPoolService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family: vxlanPoolFamily,
    schema: vxlanPoolSchema,
    blockers: [{ table: 'l2Networks', column: 'vxlanPoolUuid', what: 'l2-networks' }],
    fields: (body) => ({
      zoneUuid: body.zoneUuid as string,
      vniStart: body.vniStart as number,
      vniEnd: body.vniEnd as number,
    }),
    check: checkPool,
    mapCreateError: nameTaken,
    mapUpdateError: nameTaken,
  });
}
