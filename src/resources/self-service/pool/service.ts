/**
 * Pools as the API sees them: create/update/delete/enable/disable are the standard operations
 * (admin only), `allocate` hands a ready VM to any account that sees the pool (lease/allocate.ts),
 * and the node's periodic stock pass keeps each pool it owns at its warm target (stock.ts); the
 * health scanner heals the leased VMs of the leases it owns (../health/).
 */
import { pools as contract } from '../../../contract/self-service.js';
import { pgCode } from '../../../db/errors.js';
import type { Tx } from '../../../db/transaction.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import { type FieldProblem, invalid } from '../../../kernel/errors.js';
import type { KindService, ServiceContext } from '../../service.js';
import { ENABLE_DISABLE, standardKind } from '../../standard.js';
import { type HealthResult, healthPass } from '../health/scan.js';
import { admitAllocate } from '../lease/allocate.js';
import { floatingIpProblems } from '../lease/floating-ip.js';
import { POOL_DEFAULTS, poolFamily, poolSchema } from './model.js';
import { sizingFields, sizingProblems } from './sizing-settings.js';
import { loadPoolForStock, stockPass, tendPool } from './stock.js';

type Body = Record<string, unknown>;

function leaseFields(body: Body): Body {
  const d = (body.defaultLeaseSeconds as number | undefined) ?? POOL_DEFAULTS.defaultLeaseSeconds;
  const max = (body.maxLeaseSeconds as number | undefined) ?? Math.max(POOL_DEFAULTS.maxLeaseSeconds, d);
  if (d > max)
    throw invalid([{ field: 'defaultLeaseSeconds', problem: `must not exceed maxLeaseSeconds (${max})` }]);
  return { defaultLeaseSeconds: d, maxLeaseSeconds: max };
}

/** Everything the pool's VMs are made of must exist (the admin sees every row). */
async function checkParts(tx: Tx, body: Body): Promise<void> {
  const problems: FieldProblem[] = [];
  const image = await tx
    .selectFrom('images')
    .select(['uuid', 'state'])
    .where('uuid', '=', body.imageUuid as string)
    .executeTakeFirst();
  if (!image) problems.push({ field: 'imageUuid', problem: `no image ${body.imageUuid}` });
  else if (image.state !== 'Ready') problems.push({ field: 'imageUuid', problem: `image is ${image.state}` });
  const offering = await tx
    .selectFrom('instanceOfferings')
    .select(['uuid', 'state'])
    .where('uuid', '=', body.instanceOfferingUuid as string)
    .executeTakeFirst();
  if (!offering)
    problems.push({
      field: 'instanceOfferingUuid',
      problem: `no instance offering ${body.instanceOfferingUuid}`,
    });
  else if (offering.state !== 'Enabled')
    problems.push({ field: 'instanceOfferingUuid', problem: `instance offering is ${offering.state}` });
  const wanted = async (table: 'l3Networks' | 'securityGroups', field: string, uuids: string[]) => {
    if (uuids.length === 0) return;
    const found = await tx.selectFrom(table).select('uuid').where('uuid', 'in', uuids).execute();
    const have = new Set(found.map((r) => r.uuid));
    for (const u of uuids)
      if (!have.has(u)) problems.push({ field, problem: `no ${field.replace(/Uuids$/, '')} ${u}` });
  };
  await wanted('l3Networks', 'l3NetworkUuids', (body.l3NetworkUuids as string[]) ?? []);
  await wanted('securityGroups', 'securityGroupUuids', (body.securityGroupUuids as string[]) ?? []);
  problems.push(...(await floatingIpProblems(tx, body)));
  if ((body.cap as number) < (body.warmTarget as number))
    problems.push({ field: 'warmTarget', problem: `must not exceed cap (${body.cap})` });
  problems.push(...sizingProblems(body));
  if (problems.length > 0) throw invalid(problems);
}

/** A changed pool must still have default lease ≤ maximum and warm target ≤ cap (table constraints). */
function mapUpdateError(err: unknown): unknown {
  if (pgCode(err) !== '23514') return err;
  const constraint = (err as { constraint?: string }).constraint;
  if (constraint === 'pools_burst_check')
    return invalid([{ field: 'burstMaxFactor', problem: 'must not be below burstFactor' }]);
  return constraint === 'pools_warm_check'
    ? invalid([{ field: 'warmTarget', problem: 'must not exceed cap' }])
    : invalid([{ field: 'defaultLeaseSeconds', problem: 'must not exceed maxLeaseSeconds' }]);
}

export interface PoolService extends KindService {
  tend(poolUuid: string, now?: Date): Promise<void>;
  /** one health pass (tests pass allNodes to look at every lease whichever node owns it) */
  healthScan(allNodes?: boolean): Promise<HealthResult>;
}

export function poolService(ctx: ServiceContext): PoolService {
  const kind = standardKind(ctx, {
    contract,
    family: poolFamily,
    schema: poolSchema,
    states: ENABLE_DISABLE,
    blockers: [
      {
        table: 'poolVms',
        column: 'poolUuid',
        what: 'vms',
        remedy: 'set its warmTarget to 0, wait for its ready VMs to go, and let its leases end',
      },
    ],
    mapUpdateError,
    fields: (body) => ({
      imageUuid: body.imageUuid,
      instanceOfferingUuid: body.instanceOfferingUuid,
      l3NetworkUuids: JSON.stringify(body.l3NetworkUuids),
      securityGroupUuids: JSON.stringify(body.securityGroupUuids ?? []),
      userData: body.userData ?? null,
      floatingL3NetworkUuid: body.floatingL3NetworkUuid ?? null,
      loginUser: body.loginUser ?? 'dev',
      warmTarget: body.warmTarget,
      cap: body.cap,
      ...leaseFields(body),
      maxRenewals: body.maxRenewals ?? POOL_DEFAULTS.maxRenewals,
      perUserLimit: body.perUserLimit ?? POOL_DEFAULTS.perUserLimit,
      shared: body.shared ?? POOL_DEFAULTS.shared,
      emptyPolicy: body.emptyPolicy ?? POOL_DEFAULTS.emptyPolicy,
      waitSeconds: body.waitSeconds ?? POOL_DEFAULTS.waitSeconds,
      ...sizingFields(body),
    }),
    check: checkParts,
  });
  let tasks: PeriodicTask[] = [];
  return {
    ...kind,
    /** One stock pass over one pool, whatever node owns it, at `now` (tests move the clock). */
    async tend(poolUuid: string, now = new Date()) {
      const pool = await loadPoolForStock(ctx, poolUuid);
      if (pool) await tendPool(ctx, pool, now);
    },
    actions: { ...kind.actions, allocate: (caller, uuid, body) => admitAllocate(ctx, caller, uuid, body) },
    healthScan: (allNodes = false) => healthPass(ctx, allNodes),
    start() {
      const s = ctx.deps.settings;
      tasks = [
        new PeriodicTask(
          s.poolStockIntervalSeconds * 1000,
          () => stockPass(ctx),
          (err) => ctx.deps.log.warn({ err }, 'pool stock pass failed'),
        ).start(),
        new PeriodicTask(
          s.healthScanIntervalSeconds * 1000,
          () => healthPass(ctx),
          (err) => ctx.deps.log.warn({ err }, 'pool health scan failed'),
        ).start(),
      ];
    },
    async stop() {
      await Promise.all(tasks.map((t) => t.stop()));
    },
  };
}
