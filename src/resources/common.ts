/**
 * Building blocks shared by resource families, so each family states only what is its own:
 * - a create inserts the record at admission (uniqueness errors answer the request at once)
 *   together with its job, whose first step `create-record` is journaled as done: if a later
 *   step fails, its rollback removes the record, so nothing is left half-created;
 * - update, enable/disable and delete are one-step flows run in the resource's queue.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Tx } from '../db/transaction.js';
import type { EventBatch, EventInput } from '../engine/events.js';
import type { FlowDef, FlowStep } from '../engine/flow.js';
import type { JobRow } from '../engine/jobs.js';
import { getVisibleRow } from '../engine/query/index.js';
import type { KindSchema } from '../engine/query/schema.js';
import type { Caller } from '../kernel/caller.js';
import { CloudError, missingReference, notFound } from '../kernel/errors.js';
import type { FlowDeps, ServiceContext } from './service.js';

type Table = keyof Database & string;
// Generic table access: column names differ per table, checked by each family's own types.
type AnyDb = Kysely<Record<string, Record<string, unknown>>>;
const loose = (db: unknown) => db as AnyDb;

export interface Family {
  /** CLI/event noun: 'zone' */
  singular: string;
  /** API kind: 'zones' */
  kind: string;
  table: Table;
}

/** a child table whose rows block deleting their parent */
export interface Blocker {
  table: Table;
  column: string;
  /** plural, kebab-case: names the error code (ZONE_HAS_CLUSTERS) and the message */
  what: string;
  /** what the user should do (default: delete them first) */
  remedy?: string;
}

export function queueKey(f: Family, uuid: string): string {
  return `${f.singular}:${uuid}`;
}

export function resourceEvent(
  f: Family,
  row: { uuid: string; accountUuid: string },
  type: string,
  data: Record<string, unknown> = {},
): EventInput {
  return {
    type: `${f.singular}.${type}`,
    resourceKind: f.kind,
    resourceUuid: row.uuid,
    accountUuid: row.accountUuid,
    data,
  };
}

/** Loads a resource the caller may see, or throws NotFound (never Forbidden: no existence leak). */
export async function loadVisible(
  ctx: ServiceContext,
  schema: KindSchema,
  uuid: string,
  caller: Caller,
): Promise<Record<string, unknown> & { uuid: string; accountUuid: string }> {
  const row = await getVisibleRow(ctx.db, schema, uuid, caller);
  if (!row) throw notFound(schema.kind.replace(/s$/, ''), uuid);
  return row as Record<string, unknown> & { uuid: string; accountUuid: string };
}

/**
 * A resource named in the request body (`field`): as loadVisible, but a missing one is a 400
 * naming the field (kernel/errors.ts missingReference: the one rule for missing references).
 */
export async function loadReferenced(
  ctx: ServiceContext,
  schema: KindSchema,
  uuid: string,
  caller: Caller,
  field: string,
): Promise<Record<string, unknown> & { uuid: string; accountUuid: string }> {
  const row = await getVisibleRow(ctx.db, schema, uuid, caller);
  if (!row) throw missingReference(field, schema.kind.replace(/s$/, ''), uuid);
  return row as Record<string, unknown> & { uuid: string; accountUuid: string };
}

export async function readRow(
  db: unknown,
  table: Table,
  uuid: string,
): Promise<Record<string, unknown> | undefined> {
  return loose(db).selectFrom(table).selectAll().where('uuid', '=', uuid).executeTakeFirst();
}

/** The first step of every create chain: already done at admission; its rollback removes the record. */
export function createRecordStep<P>(f: Family): FlowStep<P, FlowDeps> {
  return {
    name: 'create-record',
    describe: `record the ${f.singular}`,
    async run() {},
    async rollback(ctx) {
      const uuid = ctx.job.resourceUuid!;
      const row = await loose(ctx.db)
        .deleteFrom(f.table)
        .where('uuid', '=', uuid)
        .returning(['uuid', 'accountUuid'])
        .executeTakeFirst();
      // tags set while the create was running (host queues run in parallel) go with the record
      await ctx.db.deleteFrom('tags').where('resourceUuid', '=', uuid).execute();
      if (row)
        await ctx.emit([
          resourceEvent(f, row as { uuid: string; accountUuid: string }, 'deleted', {
            reason: 'rolled back',
          }),
        ]);
    },
  };
}

/**
 * Inserts `row` and submits the create job atomically (one statement, or with `check` one
 * transaction), then starts the job.
 */
export async function admitCreate(
  ctx: ServiceContext,
  f: Family,
  caller: Caller,
  row: Record<string, unknown> & { uuid: string; accountUuid: string },
  params: Record<string, unknown>,
  opts: {
    check?: (tx: Tx) => Promise<void>;
    mapError?: (err: unknown) => unknown /** `check` wrote the record itself */;
    skipInsert?: boolean;
  } = {},
): Promise<JobRow> {
  const spec = {
    kind: `${f.singular}.create`,
    params,
    accountUuid: row.accountUuid,
    userUuid: caller.userUuid,
    resourceKind: f.kind,
    resourceUuid: row.uuid,
    queueKey: queueKey(f, row.uuid),
    requestId: caller.requestId,
    done: ['create-record'],
  };
  try {
    if (!opts.skipInsert)
      return await ctx.engine.submitWithRecord(
        spec,
        { table: f.table, row },
        [resourceEvent(f, row, 'created', { name: row.name })],
        opts.check,
      );
    // `check` wrote the record itself
    return await ctx.engine.submitAndStart(spec, async (tx: Tx, batch: EventBatch) => {
      await opts.check?.(tx);
      batch.add(resourceEvent(f, row, 'created', { name: row.name }));
    });
  } catch (err) {
    throw opts.mapError ? opts.mapError(err) : err;
  }
}

/** Submits a job for an existing resource, in its queue. */
export function submitFor(
  ctx: ServiceContext,
  f: Family,
  caller: Caller,
  row: { uuid: string; accountUuid: string },
  kind: string,
  params: Record<string, unknown> = {},
): Promise<JobRow> {
  return ctx.engine.submitAndStart({
    kind,
    params: { uuid: row.uuid, ...params },
    accountUuid: row.accountUuid,
    userUuid: caller.userUuid,
    resourceKind: f.kind,
    resourceUuid: row.uuid,
    queueKey: queueKey(f, row.uuid),
    requestId: caller.requestId,
  });
}

export interface ChangeParams {
  uuid: string;
  changes: Record<string, unknown>;
}

/** One-step flow that sets columns (an update, or a state change) and records an event. */
export function changeFlow(
  f: Family,
  kind: string,
  eventType: string,
  opts: { mapError?: (err: unknown) => unknown } = {},
): FlowDef<ChangeParams, FlowDeps> {
  return {
    kind,
    recovery: 'resume',
    steps: [
      {
        name: 'apply',
        describe: `${kind}`,
        async run(ctx) {
          try {
            await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
              const row = await loose(tx)
                .updateTable(f.table)
                .set({ ...ctx.params.changes, updatedAt: new Date() })
                .where('uuid', '=', ctx.params.uuid)
                .returning(['uuid', 'accountUuid'])
                .executeTakeFirst();
              if (!row) throw notFound(f.singular, ctx.params.uuid);
              batch.add({
                ...resourceEvent(
                  f,
                  row as { uuid: string; accountUuid: string },
                  eventType,
                  ctx.params.changes,
                ),
                jobUuid: ctx.job.uuid,
              });
            });
          } catch (err) {
            throw opts.mapError ? opts.mapError(err) : err;
          }
        },
      },
    ],
    result: (ctx) => readRow(ctx.db, f.table, ctx.params.uuid),
  };
}

/**
 * One-step delete flow. `blockers` names child tables that must be empty: checked here and
 * enforced by foreign keys, so a child created at the same instant still blocks the delete.
 */
export function deleteFlow(f: Family, blockers: Blocker[]): FlowDef<{ uuid: string }, FlowDeps> {
  return {
    kind: `${f.singular}.delete`,
    recovery: 'resume',
    steps: [
      {
        name: 'delete-record',
        describe: `delete the ${f.singular}`,
        async run(ctx) {
          await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
            await assertNoChildren(tx, f, ctx.params.uuid, blockers);
            const row = await loose(tx)
              .deleteFrom(f.table)
              .where('uuid', '=', ctx.params.uuid)
              .returning(['uuid', 'accountUuid'])
              .executeTakeFirst();
            if (!row) return; // already gone: deleting is idempotent
            await tx.deleteFrom('tags').where('resourceUuid', '=', ctx.params.uuid).execute();
            batch.add({
              ...resourceEvent(f, row as { uuid: string; accountUuid: string }, 'deleted'),
              jobUuid: ctx.job.uuid,
            });
          });
        },
      },
    ],
  };
}

export async function assertNoChildren(
  db: unknown,
  f: Family,
  uuid: string,
  blockers: Blocker[],
): Promise<void> {
  for (const b of blockers) {
    // `1`, not a key column: link tables (primary_storage_clusters…) have none
    const child = await loose(db)
      .selectFrom(b.table)
      .select(sql.lit(1).as('found'))
      .where(b.column, '=', uuid)
      .limit(1)
      .executeTakeFirst();
    if (child) {
      throw new CloudError(
        'Conflict',
        `${f.singular.toUpperCase().replace(/-/g, '_')}_HAS_${b.what.toUpperCase().replace(/-/g, '_')}`,
        `${f.singular} ${uuid} still has ${b.what.replace(/-/g, ' ')}; ${b.remedy ?? 'delete them first'}`,
        {
          details: { [b.what]: 'present' },
        },
      );
    }
  }
}
