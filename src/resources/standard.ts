/**
 * The operations most kinds share, wired once: update (PATCH), delete (refused while children
 * exist), state actions (enable → Enabled, …) and, for records that need no further steps, a
 * create chain of only `create-record`. Each runs as a one-step flow in the resource's queue.
 */

import type { KindContract } from '../contract/kinds.js';
import type { Tx } from '../db/transaction.js';
import type { KindSchema } from '../engine/query/schema.js';
import type { Caller } from '../kernel/caller.js';
import { newId } from '../kernel/ids.js';
import {
  admitCreate,
  assertNoChildren,
  type Blocker,
  changeFlow,
  createRecordStep,
  deleteFlow,
  type Family,
  loadVisible,
  readRow,
  submitFor,
} from './common.js';
import type { KindService, Operation, ServiceContext } from './service.js';

export const ENABLE_DISABLE = { enable: 'Enabled', disable: 'Disabled' } as const;

export interface StandardOptions {
  family: Family;
  schema: KindSchema;
  /** child tables that must be empty before a delete (checked at admission and in the flow) */
  blockers?: Blocker[];
  /** state actions: action name → the `state` it sets */
  states?: Record<string, string>;
  /** the create chain is only `create-record` (done at admission) */
  simpleCreate?: boolean;
  /** maps a failed update (e.g. a unique violation) to a clear error */
  mapUpdateError?: (err: unknown) => unknown;
  /** extra refusal before a delete is admitted (e.g. the resource is busy) */
  beforeRemove?: (
    row: Record<string, unknown> & { uuid: string; accountUuid: string },
  ) => void | Promise<void>;
}

export interface StandardOperations {
  update: Operation;
  remove: NonNullable<KindService['remove']>;
  actions: Record<string, Operation>;
}

export function standardOperations(ctx: ServiceContext, o: StandardOptions): StandardOperations {
  const { family, schema } = o;
  const s = family.singular;
  const blockers = o.blockers ?? [];
  const load = (caller: Caller, uuid: string) => loadVisible(ctx, schema, uuid, caller);

  if (o.simpleCreate) {
    ctx.engine.register({
      kind: `${s}.create`,
      recovery: 'resume',
      steps: [createRecordStep(family)],
      result: (c) => readRow(c.db, family.table, c.job.resourceUuid!),
    });
  }
  ctx.engine.register(
    changeFlow(family, `${s}.update`, 'updated', o.mapUpdateError ? { mapError: o.mapUpdateError } : {}),
  );
  ctx.engine.register(deleteFlow(family, blockers));

  const actions: Record<string, Operation> = {};
  for (const [action, state] of Object.entries(o.states ?? {})) {
    ctx.engine.register(changeFlow(family, `${s}.${action}`, 'state.changed'));
    actions[action] = async (caller, uuid) =>
      submitFor(ctx, family, caller, await load(caller, uuid), `${s}.${action}`, { changes: { state } });
  }

  return {
    update: async (caller, uuid, body) =>
      submitFor(ctx, family, caller, await load(caller, uuid), `${s}.update`, { changes: body }),
    remove: async (caller, uuid) => {
      const row = await load(caller, uuid);
      await o.beforeRemove?.(row);
      await assertNoChildren(ctx.db, family, uuid, blockers); // answered at once; the flow checks again
      return submitFor(ctx, family, caller, row, `${s}.delete`);
    },
    actions,
  };
}

export interface StandardKindOptions extends StandardOptions {
  contract: KindContract;
  /** the kind's own columns of a new record, from the validated body (uuid, name, description, owner are added) */
  fields(body: Record<string, unknown>, caller: Caller): Record<string, unknown>;
  /** runs inside the creating transaction (e.g. the parent still exists) */
  check?(tx: Tx, body: Record<string, unknown>): Promise<void>;
  /** maps a failed create (e.g. a unique violation) to a clear error */
  mapCreateError?: (err: unknown) => unknown;
}

/**
 * A kind whose record needs no chain beyond `create-record`: create admits the record, and
 * update, delete and state actions are the standard operations. Zones, clusters, offerings and
 * affinity groups are all this.
 */
export function standardKind(ctx: ServiceContext, o: StandardKindOptions): KindService {
  const ops = standardOperations(ctx, { ...o, simpleCreate: true });
  return {
    contract: o.contract,
    schema: o.schema,
    ...ops,
    create(caller, body) {
      const row = {
        uuid: newId(),
        name: body.name as string,
        description: (body.description as string | undefined) ?? null,
        ...o.fields(body, caller),
        accountUuid: caller.accountUuid,
      };
      return admitCreate(ctx, o.family, caller, row, body, {
        ...(o.check ? { check: (tx: Tx) => o.check!(tx, body) } : {}),
        ...(o.mapCreateError ? { mapError: o.mapCreateError } : {}),
      });
    },
  };
}
