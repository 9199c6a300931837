/**
 * L3 networks (docs/network.md "L3 networks and IP ranges"): an IP network on an L2, owned by an
 * account. Any account may create private ones; public/system categories and `shared` (every
 * account may use it) are the admin's. A shared L3 is visible to all (publicColumn), but only its
 * owner or the admin changes it. Lists and GETs read `l3_networks_with_capacity` (ipTotal, ipUsed,
 * ipFree: counts over the address index, computed per row by the view). Provider virtual-router
 * needs an offering: the given one or the zone's default, resolved and stored at create.
 * Delete is refused while IP ranges, NICs, VIPs or routers use it.
 */
import { l3Networks as contract } from '../../../contract/network.js';
import { mapUnique } from '../../../db/errors.js';
import type { HostRoute } from '../../../db/schema.js';
import type { Tx } from '../../../db/transaction.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalid, invalidField } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { admitCreate, type Family, loadVisible } from '../../common.js';
import type { KindService, Operation, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardOperations } from '../../standard.js';
import { jsonColumns, networkSettingProblems } from './validate.js';

export const l3NetworkFamily: Family = { singular: 'l3-network', kind: 'l3-networks', table: 'l3Networks' };

export const l3NetworkSchema: KindSchema = {
  kind: 'l3-networks',
  table: 'l3NetworksWithCapacity',
  visibility: 'owned',
  publicColumn: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    l2NetworkUuid: 'uuid',
    zoneUuid: 'uuid',
    category: { enum: ['public', 'private', 'system'] },
    ipVersion: 'int',
    shared: 'boolean',
    domainName: 'string',
    mtu: 'int',
    provider: { enum: ['flat', 'virtual-router'] },
    ipAllocation: { enum: ['random', 'sequential'] },
    virtualRouterOfferingUuid: 'uuid',
    state: { enum: ['Enabled', 'Disabled'] },
    ipTotal: 'int',
    ipUsed: 'int',
    ipFree: 'int',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  selectOnly: ['dns', 'hostRoutes'],
  relations: {
    l2Network: { kind: 'l2-networks', local: 'l2NetworkUuid', remote: 'uuid' },
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    ipRanges: { kind: 'ip-ranges', local: 'uuid', remote: 'l3NetworkUuid', many: true },
  },
  defaultSort: 'createdAt',
};

const nameTaken = (err: unknown) =>
  mapUnique(err, 'L3_NETWORK_NAME_TAKEN', 'you already have an L3 network with this name');

/** A change to an L3 the caller may see but does not own (a shared one) is refused. */
export function assertOwner(
  caller: Caller,
  row: { uuid: string; accountUuid: string },
  what = 'change it',
): void {
  if (!caller.isAdmin && row.accountUuid !== caller.accountUuid)
    throw new CloudError(
      'Forbidden',
      'FORBIDDEN',
      `L3 network ${row.uuid} is shared but not yours; only its owner or the admin may ${what}`,
    );
}

function adminOnlyField(field: string, message: string): CloudError {
  return new CloudError('Forbidden', 'FORBIDDEN', `${field}: ${message}`, { details: { field } });
}

export class L3NetworkService implements KindService {
  readonly contract = contract;
  readonly schema = l3NetworkSchema;
  readonly update: Operation;
  readonly remove: NonNullable<KindService['remove']>;
  readonly actions: Record<string, Operation> = {};

  constructor(private readonly ctx: ServiceContext) {
    const ops = standardOperations(ctx, {
      family: l3NetworkFamily,
      schema: l3NetworkSchema,
      simpleCreate: true,
      states: ENABLE_DISABLE,
      mapUpdateError: nameTaken,
      blockers: [
        { table: 'ipRanges', column: 'l3NetworkUuid', what: 'ip-ranges' },
        { table: 'vmNics', column: 'l3NetworkUuid', what: 'vm-nics', remedy: 'detach them first' },
        { table: 'vips', column: 'l3NetworkUuid', what: 'vips' },
        { table: 'virtualRouters', column: 'l3NetworkUuid', what: 'virtual-routers' },
        { table: 'virtualRouterOfferings', column: 'publicL3NetworkUuid', what: 'virtual-router-offerings' },
        {
          table: 'virtualRouterOfferings',
          column: 'managementL3NetworkUuid',
          what: 'virtual-router-offerings',
        },
      ],
    });
    // loadVisible lets an account see a shared L3: changing it stays with the owner
    const owned =
      (op: Operation): Operation =>
      async (caller, uuid, body) => {
        assertOwner(caller, await loadVisible(ctx, l3NetworkSchema, uuid, caller));
        return op(caller, uuid, body);
      };
    this.update = owned(async (caller, uuid, body) => {
      const problems = networkSettingProblems(body);
      if (problems.length > 0) throw invalid(problems);
      return ops.update(caller, uuid, jsonColumns(body));
    });
    this.remove = async (caller, uuid) => {
      assertOwner(caller, await loadVisible(ctx, l3NetworkSchema, uuid, caller), 'delete it');
      return ops.remove(caller, uuid);
    };
    for (const [name, op] of Object.entries(ops.actions)) this.actions[name] = owned(op);
  }

  async create(caller: Caller, body: Record<string, unknown>): Promise<JobRow> {
    const category = body.category as 'public' | 'private' | 'system';
    if (category !== 'private' && !caller.isAdmin)
      throw adminOnlyField('category', `only the admin account may create ${category} L3 networks`);
    if (body.shared === true && !caller.isAdmin)
      throw adminOnlyField('shared', 'only the admin account may create shared L3 networks');
    const problems = networkSettingProblems(body);
    const provider = (body.provider as 'flat' | 'virtual-router' | undefined) ?? null;
    if (body.virtualRouterOfferingUuid !== undefined && provider !== 'virtual-router')
      problems.push({ field: 'virtualRouterOfferingUuid', problem: 'only with provider virtual-router' });
    if (problems.length > 0) throw invalid(problems);

    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      l2NetworkUuid: body.l2NetworkUuid as string,
      zoneUuid: '', // the L2's, read in the creating transaction
      category,
      ipVersion: (body.ipVersion as number | undefined) ?? 4,
      shared: body.shared === true,
      dns: JSON.stringify((body.dns as string[] | undefined) ?? []),
      domainName: (body.domainName as string | undefined) ?? null,
      mtu: (body.mtu as number | undefined) ?? 1500,
      hostRoutes: JSON.stringify((body.hostRoutes as HostRoute[] | undefined) ?? []),
      provider,
      ipAllocation: (body.ipAllocation as 'random' | 'sequential' | undefined) ?? 'random',
      virtualRouterOfferingUuid: (body.virtualRouterOfferingUuid as string | undefined) ?? null,
      accountUuid: caller.accountUuid,
    };
    return admitCreate(this.ctx, l3NetworkFamily, caller, row, body, {
      check: (tx) => this.resolve(tx, row),
      mapError: nameTaken,
    });
  }

  /** In the creating transaction: the L2 (its zone is copied) and the router offering. */
  private async resolve(
    tx: Tx,
    row: {
      l2NetworkUuid: string;
      zoneUuid: string;
      provider: string | null;
      virtualRouterOfferingUuid: string | null;
    },
  ): Promise<void> {
    const l2 = await tx
      .selectFrom('l2Networks')
      .select(['uuid', 'zoneUuid'])
      .where('uuid', '=', row.l2NetworkUuid)
      .forShare()
      .executeTakeFirst();
    if (!l2)
      throw invalidField('l2NetworkUuid', `no L2 network ${row.l2NetworkUuid}`, 'L2_NETWORK_NOT_FOUND');
    row.zoneUuid = l2.zoneUuid;
    if (row.provider !== 'virtual-router') return;
    let q = tx
      .selectFrom('virtualRouterOfferings')
      .select(['uuid', 'zoneUuid'])
      .where('zoneUuid', '=', l2.zoneUuid)
      .forShare();
    q = row.virtualRouterOfferingUuid
      ? q.where('uuid', '=', row.virtualRouterOfferingUuid)
      : q.where('isDefault', '=', true);
    const offering = await q.executeTakeFirst();
    if (!offering)
      throw invalidField(
        'virtualRouterOfferingUuid',
        row.virtualRouterOfferingUuid
          ? `no virtual-router offering ${row.virtualRouterOfferingUuid} in zone ${l2.zoneUuid}`
          : `zone ${l2.zoneUuid} has no default virtual-router offering: give one`,
        'VIRTUAL_ROUTER_OFFERING_NOT_FOUND',
      );
    row.virtualRouterOfferingUuid = offering.uuid;
  }
}
