/**
 * Virtual-router offerings: how the routers of virtual-router L3 networks are made — the
 * appliance image, vCPUs and memory, the management L3 (how the management node reaches them)
 * and the public L3 (their uplink: SNAT, EIP and port-forwarding addresses). Admin-managed,
 * read by every account.
 *
 * One default per zone, kept by the unique index `virtual_router_offerings_default_key`: creating
 * a default while the zone has one is refused (VIRTUAL_ROUTER_OFFERING_DEFAULT_TAKEN) rather
 * than moving the flag silently — an L3 created earlier without an offering keeps resolving to
 * the offering the admin chose. Delete is refused while routers or L3 networks name it (foreign
 * keys back the check).
 */
import { virtualRouterOfferings as contract } from '../../../contract/network.js';
import { isUniqueViolation, mapUnique } from '../../../db/errors.js';
import type { Tx } from '../../../db/transaction.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import { CloudError, type FieldProblem, invalid } from '../../../kernel/errors.js';
import type { Blocker, Family } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';

export const vrOfferingFamily: Family = {
  singular: 'virtual-router-offering',
  kind: 'virtual-router-offerings',
  table: 'virtualRouterOfferings',
};

const blockers: Blocker[] = [
  { table: 'virtualRouters', column: 'offeringUuid', what: 'virtual-routers' },
  {
    table: 'l3Networks',
    column: 'virtualRouterOfferingUuid',
    what: 'l3-networks',
    remedy: 'delete those L3 networks first',
  },
];

export const vrOfferingSchema: KindSchema = {
  kind: 'virtual-router-offerings',
  table: 'virtualRouterOfferings',
  visibility: 'shared',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    zoneUuid: 'uuid',
    cpu: 'int',
    memory: 'int',
    imageUuid: 'uuid',
    managementL3NetworkUuid: 'uuid',
    publicL3NetworkUuid: 'uuid',
    isDefault: 'boolean',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    image: { kind: 'images', local: 'imageUuid', remote: 'uuid' },
    publicL3Network: { kind: 'l3-networks', local: 'publicL3NetworkUuid', remote: 'uuid' },
    managementL3Network: { kind: 'l3-networks', local: 'managementL3NetworkUuid', remote: 'uuid' },
    virtualRouters: { kind: 'virtual-routers', local: 'uuid', remote: 'offeringUuid', many: true },
  },
  defaultSort: 'createdAt',
};

function mapError(err: unknown): unknown {
  if (isUniqueViolation(err, 'virtual_router_offerings_default_key'))
    return new CloudError(
      'Conflict',
      'VIRTUAL_ROUTER_OFFERING_DEFAULT_TAKEN',
      'the zone already has a default virtual-router offering; create this one without isDefault',
      { details: { constraint: 'virtual_router_offerings_default_key' } },
    );
  return mapUnique(
    err,
    'VIRTUAL_ROUTER_OFFERING_NAME_TAKEN',
    'a virtual-router offering with this name already exists',
  );
}

/** Every reference of the request is checked at once (and share-locked against deletion). */
async function checkReferences(tx: Tx, body: Record<string, unknown>): Promise<void> {
  const zoneUuid = body.zoneUuid as string;
  const [zone, image, l3s] = await Promise.all([
    tx.selectFrom('zones').select('uuid').where('uuid', '=', zoneUuid).forShare().executeTakeFirst(),
    tx
      .selectFrom('images')
      .select(['uuid', 'state'])
      .where('uuid', '=', body.imageUuid as string)
      .forShare()
      .executeTakeFirst(),
    tx
      .selectFrom('l3Networks')
      .select(['uuid', 'category', 'zoneUuid', 'state'])
      .where('uuid', 'in', [body.managementL3NetworkUuid as string, body.publicL3NetworkUuid as string])
      .forShare()
      .execute(),
  ]);
  const problems: FieldProblem[] = [];
  if (!zone) problems.push({ field: 'zoneUuid', problem: `no zone ${zoneUuid}` });
  if (!image) problems.push({ field: 'imageUuid', problem: `no image ${body.imageUuid}` });
  else if (image.state !== 'Ready')
    problems.push({ field: 'imageUuid', problem: `image ${image.uuid} is ${image.state}; it must be Ready` });
  for (const field of ['managementL3NetworkUuid', 'publicL3NetworkUuid'] as const) {
    const uuid = body[field] as string;
    const l3 = l3s.find((l) => l.uuid === uuid);
    if (!l3) problems.push({ field, problem: `no L3 network ${uuid}` });
    else if (l3.zoneUuid !== zoneUuid)
      problems.push({ field, problem: `L3 network ${uuid} is not in zone ${zoneUuid}` });
    else if (field === 'publicL3NetworkUuid' && l3.category !== 'public')
      problems.push({ field, problem: `L3 network ${uuid} is ${l3.category}; it must be public` });
  }
  if (problems.length > 0) throw invalid(problems);
}

export function vrOfferingService(ctx: ServiceContext): KindService {
  return standardKind(ctx, {
    contract,
    family: vrOfferingFamily,
    schema: vrOfferingSchema,
    blockers,
    states: ENABLE_DISABLE,
    fields: (body) => ({
      zoneUuid: body.zoneUuid as string,
      cpu: body.cpu as number,
      memory: body.memory as number,
      imageUuid: body.imageUuid as string,
      managementL3NetworkUuid: body.managementL3NetworkUuid as string,
      publicL3NetworkUuid: body.publicL3NetworkUuid as string,
      isDefault: (body.isDefault as boolean | undefined) ?? false,
    }),
    check: checkReferences,
    mapCreateError: mapError,
    mapUpdateError: mapError,
  });
}
