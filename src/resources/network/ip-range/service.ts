/**
 * IP ranges (docs/network.md "L3 networks and IP ranges"): the addresses of an L3 that IPAM hands
 * out (normal) or never hands out (reserved, inside a normal range). A range belongs to its L3's
 * account; the caller must own the L3 or be the admin. Ranges of one type never overlap on an L3
 * (IP_RANGE_OVERLAPS): checked under the L3's row lock (SELECT … FOR UPDATE), so concurrent
 * creates on one L3 serialize and exactly one of two overlapping ones passes. A range whose
 * addresses are allocated cannot be deleted (IP_RANGE_IN_USE; the foreign key backs it).
 */
import { ipRanges as contract } from '../../../contract/network.js';
import { isForeignKeyViolation } from '../../../db/errors.js';
import type { Tx } from '../../../db/transaction.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalid, invalidField, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { formatIp, type IpVersion, toDecimal } from '../../../kernel/ip.js';
import {
  admitCreate,
  changeFlow,
  createRecordStep,
  type Family,
  loadReferenced,
  loadVisible,
  readRow,
  resourceEvent,
  submitFor,
} from '../../common.js';
import type { FlowDeps, KindService, Operation, ServiceContext } from '../../service.js';
import { forgetIpPlan } from '../ipam/allocate.js';
import { assertOwner, l3NetworkSchema } from '../l3-network/service.js';
import { checkRange, type RangeInput, type RangeSpec } from './validate.js';

export const ipRangeFamily: Family = { singular: 'ip-range', kind: 'ip-ranges', table: 'ipRanges' };

export const ipRangeSchema: KindSchema = {
  kind: 'ip-ranges',
  table: 'ipRanges',
  visibility: 'owned',
  taggable: true,
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    l3NetworkUuid: 'uuid',
    type: { enum: ['normal', 'reserved'] },
    ipVersion: 'int',
    startIp: 'string',
    endIp: 'string',
    gateway: 'string',
    prefixLength: 'int',
    netmask: 'string',
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  relations: {
    l3Network: { kind: 'l3-networks', local: 'l3NetworkUuid', remote: 'uuid' },
    ipAddresses: { kind: 'ip-addresses', local: 'uuid', remote: 'ipRangeUuid', many: true },
  },
  defaultSort: 'createdAt',
};

function inUse(uuid: string, what: string): CloudError {
  return new CloudError('Conflict', 'IP_RANGE_IN_USE', `IP range ${uuid} ${what}`, {
    details: { ipRangeUuid: uuid },
  });
}

/** Admission and the flow alike: no allocated address in it, no reserved range inside a normal one. */
async function assertUnused(db: Tx | ServiceContext['db'], uuid: string): Promise<void> {
  const used = await db
    .selectFrom('ipAddresses')
    .select('ip')
    .where('ipRangeUuid', '=', uuid)
    .limit(1)
    .executeTakeFirst();
  if (used) throw inUse(uuid, `has allocated addresses (e.g. ${used.ip}); release them first`);
  const reserved = await db
    .selectFrom('ipRanges as n')
    .innerJoin('ipRanges as r', (j) =>
      j
        .onRef('r.l3NetworkUuid', '=', 'n.l3NetworkUuid')
        .on('r.type', '=', 'reserved')
        .onRef('r.firstNumber', '>=', 'n.firstNumber')
        .onRef('r.lastNumber', '<=', 'n.lastNumber'),
    )
    .select('r.uuid')
    .where('n.uuid', '=', uuid)
    .where('n.type', '=', 'normal')
    .limit(1)
    .executeTakeFirst();
  if (reserved) throw inUse(uuid, `holds reserved range ${reserved.uuid}; delete it first`);
}

const deleteFlow: FlowDef<{ uuid: string }, FlowDeps> = {
  kind: 'ip-range.delete',
  recovery: 'resume',
  steps: [
    {
      name: 'delete-record',
      describe: 'delete the IP range',
      async run(ctx) {
        const { uuid } = ctx.params;
        try {
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            const range = await tx
              .selectFrom('ipRanges')
              .select('l3NetworkUuid')
              .where('uuid', '=', uuid)
              .executeTakeFirst();
            if (!range) return; // already gone: deleting is idempotent
            // serializes with range creates on the L3 (a reserved range being put inside this one)
            await tx
              .selectFrom('l3Networks')
              .select('uuid')
              .where('uuid', '=', range.l3NetworkUuid)
              .forUpdate()
              .execute();
            await assertUnused(tx, uuid);
            const row = await tx
              .deleteFrom('ipRanges')
              .where('uuid', '=', uuid)
              .returning(['uuid', 'accountUuid'])
              .executeTakeFirst();
            if (!row) return;
            forgetIpPlan(range.l3NetworkUuid);
            await tx.deleteFrom('tags').where('resourceUuid', '=', uuid).execute();
            batch.add({ ...resourceEvent(ipRangeFamily, row, 'deleted'), jobUuid: ctx.job.uuid });
          });
        } catch (err) {
          // an address allocated between the check and the delete: the foreign key refuses
          if (isForeignKeyViolation(err)) throw inUse(uuid, 'has allocated addresses; release them first');
          throw err;
        }
      },
    },
  ],
};

interface StoredRange {
  uuid: string;
  type: 'normal' | 'reserved';
  first: bigint;
  last: bigint;
  prefixLength: number;
  netmask: string | null;
}

export class IpRangeService implements KindService {
  readonly contract = contract;
  readonly schema = ipRangeSchema;
  readonly update: Operation;
  readonly remove: NonNullable<KindService['remove']>;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register({
      kind: 'ip-range.create',
      recovery: 'resume',
      steps: [createRecordStep(ipRangeFamily)],
      result: (c) => readRow(c.db, 'ipRanges', c.job.resourceUuid!),
    });
    ctx.engine.register(changeFlow(ipRangeFamily, 'ip-range.update', 'updated'));
    ctx.engine.register(deleteFlow);
    this.update = async (caller, uuid, body) =>
      submitFor(
        ctx,
        ipRangeFamily,
        caller,
        await loadVisible(ctx, ipRangeSchema, uuid, caller),
        'ip-range.update',
        {
          changes: body,
        },
      );
    this.remove = async (caller, uuid) => {
      const row = await loadVisible(ctx, ipRangeSchema, uuid, caller);
      await assertUnused(ctx.db, uuid); // answered at once; the flow checks again
      return submitFor(ctx, ipRangeFamily, caller, row, 'ip-range.delete');
    };
  }

  async create(caller: Caller, body: Record<string, unknown>): Promise<JobRow> {
    const l3Uuid = body.l3NetworkUuid as string;
    // another account's private L3 is not there for this caller: named in the body, so a 400
    const l3 = await loadReferenced(this.ctx, l3NetworkSchema, l3Uuid, caller, 'l3NetworkUuid');
    assertOwner(caller, l3, 'add IP ranges to it');
    const checked = checkRange(body as RangeInput, l3.ipVersion as IpVersion);
    if (!checked.ok) throw invalid(checked.problems, 'IP_RANGE_INVALID');
    const spec = checked.spec;
    const type = (body.type as 'normal' | 'reserved' | undefined) ?? 'normal';
    const row = {
      uuid: newId(),
      name: body.name as string,
      description: (body.description as string | undefined) ?? null,
      l3NetworkUuid: l3Uuid,
      type,
      ipVersion: spec.ipVersion,
      startIp: spec.startIp,
      endIp: spec.endIp,
      firstNumber: toDecimal(spec.first),
      lastNumber: toDecimal(spec.last),
      gateway: spec.gateway,
      gatewayNumber: spec.gatewayValue === null ? null : toDecimal(spec.gatewayValue),
      prefixLength: spec.prefixLength ?? 0,
      netmask: spec.netmask,
      accountUuid: l3.accountUuid,
    };
    const job = await admitCreate(this.ctx, ipRangeFamily, caller, row, body, {
      check: (tx) => this.checkAgainstL3(tx, row, spec, type),
    });
    forgetIpPlan(l3Uuid); // this node's next allocation on the L3 sees the new range at once
    return job;
  }

  /** Under the L3's row lock: no overlap; a reserved range lies inside a normal one, on no allocated address. */
  private async checkAgainstL3(
    tx: Tx,
    row: { l3NetworkUuid: string; prefixLength: number; netmask: string | null },
    spec: RangeSpec,
    type: 'normal' | 'reserved',
  ): Promise<void> {
    const l3 = await tx
      .selectFrom('l3Networks')
      .select('uuid')
      .where('uuid', '=', row.l3NetworkUuid)
      .forUpdate()
      .executeTakeFirst();
    if (!l3) throw notFound('l3-network', row.l3NetworkUuid);
    const ranges: StoredRange[] = (
      await tx
        .selectFrom('ipRanges')
        .select((eb) => [
          'uuid',
          'type',
          'prefixLength',
          'netmask',
          eb.cast<string>('firstNumber', 'text').as('first'),
          eb.cast<string>('lastNumber', 'text').as('last'),
        ])
        .where('l3NetworkUuid', '=', row.l3NetworkUuid)
        .execute()
    ).map((r) => ({ ...r, first: BigInt(r.first), last: BigInt(r.last) }));
    const text = (r: { first: bigint; last: bigint }) =>
      `${formatIp(r.first, spec.ipVersion)}-${formatIp(r.last, spec.ipVersion)}`;
    const clash = ranges.find((r) => r.type === type && r.first <= spec.last && spec.first <= r.last);
    if (clash)
      throw new CloudError(
        'Conflict',
        'IP_RANGE_OVERLAPS',
        `${text(spec)} overlaps ${type} range ${clash.uuid} (${text(clash)}) of L3 network ${row.l3NetworkUuid}`,
        { details: { ipRangeUuid: clash.uuid } },
      );
    if (type === 'normal') return;
    const holder = ranges.find((r) => r.type === 'normal' && r.first <= spec.first && spec.last <= r.last);
    if (!holder)
      throw invalidField(
        'startIp',
        `${text(spec)} does not lie within one normal range of the L3 network`,
        'IP_RANGE_INVALID',
      );
    if (spec.prefixLength === null) {
      row.prefixLength = holder.prefixLength;
      row.netmask = holder.netmask;
    }
    const used = await tx
      .selectFrom('ipAddresses')
      .select('ip')
      .where('l3NetworkUuid', '=', row.l3NetworkUuid)
      .where('ipNumber', '>=', toDecimal(spec.first))
      .where('ipNumber', '<=', toDecimal(spec.last))
      .limit(1)
      .executeTakeFirst();
    if (used)
      throw new CloudError(
        'Conflict',
        'IP_RANGE_IN_USE',
        `${used.ip} is allocated inside ${text(spec)}; release it first`,
        {
          details: { ip: used.ip },
        },
      );
  }
}
