/**
 * The VM transition table (kernel/vm-states.ts) applied to rows. Every operation is admitted by
 * one conditional UPDATE in the transaction that submits its job — `state = observed and task is
 * null` → `state = during, task = op` — so a second mutating request is refused at once; it ends
 * with `finishOperation` (state `to`, task cleared) or, rolled back, with finishOperation back to
 * the state it came from (operations.ts admitStep). Both match `task = op`, so they are idempotent and never
 * touch a VM another operation holds.
 */
import { sql } from 'kysely';
import type { Db } from '../../../db/pool.js';
import type { Tx } from '../../../db/transaction.js';
import type { EventBatch } from '../../../engine/events.js';
import type { StepContext } from '../../../engine/flow.js';
import { notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { canRun, refusal, TRANSITIONS, type VmOperation, type VmState } from '../../../kernel/vm-states.js';
import { resourceEvent } from '../../common.js';
import type { FlowDeps } from '../../service.js';
import { presentVm, type VmRow, vmFamily } from './model.js';

type Ctx = StepContext<unknown, FlowDeps>;

/**
 * Admits `op` on the VM inside `tx`, or throws the refusal naming its state (VM_INVALID_STATE)
 * or its task (VM_BUSY). Returns the state it came from.
 */
export async function admitOperation(
  tx: Tx,
  vm: { uuid: string; state: string; task: string | null },
  op: VmOperation,
  batch: EventBatch,
): Promise<VmState> {
  let seen = { state: vm.state as VmState, task: vm.task };
  // the row read before the transaction may be stale (the reconciler moves idle VMs): retry once
  for (let attempt = 0; attempt < 2; attempt++) {
    if (!canRun(op, seen.state, seen.task)) throw refusal(vm.uuid, op, seen.state, seen.task);
    const during = TRANSITIONS[op].during ?? seen.state;
    const row = await tx
      .updateTable('vms')
      .set({ state: during, task: op, updatedAt: new Date() })
      .where('uuid', '=', vm.uuid)
      .where('state', '=', seen.state)
      .where('task', 'is', null)
      .returning(['uuid', 'accountUuid'])
      .executeTakeFirst();
    if (row) {
      if (during !== seen.state)
        batch.add(resourceEvent(vmFamily, row, 'state.changed', { state: during, task: op }));
      return seen.state;
    }
    const now = await tx
      .selectFrom('vms')
      .select(['state', 'task'])
      .where('uuid', '=', vm.uuid)
      .executeTakeFirst();
    if (!now) throw notFound('vm', vm.uuid);
    seen = { state: now.state as VmState, task: now.task };
  }
  throw refusal(vm.uuid, op, seen.state, seen.task);
}

export type VmChanges = Partial<{
  state: string;
  powerState: string;
  hostUuid: string | null;
  lastHostUuid: string | null;
  destroyedAt: Date | null;
  cpu: number;
  memory: number;
  instanceOfferingUuid: string | null;
}>;

/**
 * Ends `op` on the VM: `before(tx)` (e.g. giving host capacity back) and the state change commit
 * together, with the event. False when the VM no longer carries the task (already finished).
 */
export async function finishOperation(
  ctx: Ctx,
  op: VmOperation | 'create',
  changes: VmChanges,
  before?: (tx: Tx) => Promise<void>,
  eventData: Record<string, unknown> = {},
): Promise<boolean> {
  const uuid = ctx.job.resourceUuid!;
  return ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
    const held = await tx
      .selectFrom('vms')
      .select('uuid')
      .where('uuid', '=', uuid)
      .where('task', '=', op)
      .forUpdate()
      .executeTakeFirst();
    if (!held) return false;
    await before?.(tx);
    const row = await tx
      .updateTable('vms')
      .set({ ...changes, task: null, updatedAt: new Date() })
      .where('uuid', '=', uuid)
      .returning(['uuid', 'accountUuid', 'state', 'powerState', 'hostUuid'])
      .executeTakeFirstOrThrow();
    batch.add({
      ...resourceEvent(vmFamily, row, 'state.changed', {
        state: row.state,
        powerState: row.powerState,
        operation: op,
        ...eventData,
      }),
      jobUuid: ctx.job.uuid,
    });
    return true;
  });
}

/** The row each chain's last step left, for the job's result without reading it again. */
const finished = new WeakMap<object, VmRow>();

/** The job result of a VM chain: the VM as its last step left it (read again only if unknown). */
export async function vmResult(ctx: { db: Db; data: object; job: { resourceUuid: string | null } }) {
  const row =
    finished.get(ctx.data) ??
    (await ctx.db.selectFrom('vms').selectAll().where('uuid', '=', ctx.job.resourceUuid!).executeTakeFirst());
  return presentVm(row);
}

/**
 * Like finishOperation for the hot path (no capacity change): the UPDATE and its event in ONE
 * statement — atomic without a transaction's four round trips. False when the VM no longer
 * carries the task.
 */
export async function markState(ctx: Ctx, op: VmOperation | 'create', changes: VmChanges): Promise<boolean> {
  const uuid = ctx.job.resourceUuid!;
  const data = JSON.stringify({ state: changes.state, powerState: changes.powerState, operation: op });
  const row = await ctx.db
    .with('v', (db) =>
      db
        .updateTable('vms')
        .set({ ...changes, task: null, updatedAt: new Date() })
        .where('uuid', '=', uuid)
        .where('task', '=', op)
        .returningAll(),
    )
    .with('e', (db) =>
      db
        .insertInto('events')
        .columns(['uuid', 'type', 'resourceKind', 'resourceUuid', 'accountUuid', 'jobUuid', 'data'])
        .expression((eb) =>
          eb
            .selectFrom('v')
            .select([
              eb.val(newId()).as('uuid'),
              eb.val('vm.state.changed').as('type'),
              eb.val(vmFamily.kind).as('resourceKind'),
              'v.uuid',
              'v.accountUuid',
              eb.val(ctx.job.uuid).as('jobUuid'),
              sql<string>`${data}::jsonb`.as('data'),
            ]),
        )
        .returningAll(),
    )
    .selectFrom(['v', 'e'])
    .selectAll('v')
    .select(['e.id as eventId', 'e.uuid as eventUuid', 'e.at as eventAt', 'e.data as eventData'])
    .executeTakeFirst();
  if (!row) return false;
  const { eventId, eventUuid, eventAt, eventData, ...vm } = row;
  finished.set(ctx.data, vm);
  ctx.deps.events.publish([
    {
      id: String(eventId),
      uuid: eventUuid,
      at: eventAt,
      type: 'vm.state.changed',
      resourceKind: vmFamily.kind,
      resourceUuid: vm.uuid,
      accountUuid: vm.accountUuid,
      jobUuid: ctx.job.uuid,
      data: eventData,
    },
  ]);
  return true;
}

/** The VM row (throws VM_NOT_FOUND when it is gone). */
export async function vmRow(db: Db | Tx, uuid: string): Promise<VmRow> {
  const row = await db.selectFrom('vms').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw notFound('vm', uuid);
  return row;
}
