/**
 * A job recorded Succeeded at its admission (a pool hand-out): its row and its events — the
 * resource's and the job's own `job.state.changed` — in ONE statement, so the admitting
 * transaction spends one round trip on them instead of two. `also` is a value the same
 * statement computes (a check the caller makes with a snapshot taken after its earlier
 * statements: lease/allocate.ts counts the holder's leases there). The caller publishes
 * `stored` once its transaction has committed (events.ts: a rolled-back change is never streamed).
 */
import { type RawBuilder, sql } from 'kysely';
import type { Tx } from '../db/transaction.js';
import { type CloudEvent, type EventInput, eventValues, storedEvents } from './events.js';
import { newJournal } from './flow.js';
import { type JobRow, type JobSpec, jobValues } from './jobs.js';

export function finishedJobValues(spec: JobSpec, ownerNode: string, steps: string[], result: unknown) {
  const now = new Date();
  return {
    ...jobValues(spec, ownerNode),
    state: 'Succeeded',
    progress: 100,
    progressMessage: 'done',
    result: JSON.stringify(result ?? null),
    flow: JSON.stringify({ ...newJournal(spec.data ?? {}), done: steps }),
    startedAt: now,
    finishedAt: now,
  } as const;
}

export async function insertFinishedJob<T>(
  tx: Tx,
  values: ReturnType<typeof finishedJobValues>,
  events: EventInput[],
  also?: RawBuilder<T>,
): Promise<{ job: JobRow; stored: CloudEvent[]; also: T | undefined }> {
  const rows = eventValues(events);
  const row = await tx
    .with('e', (qb) => qb.insertInto('events').values(rows).returning(['id', 'uuid', 'at']))
    .insertInto('jobs')
    .values(values)
    .returningAll()
    .returning([
      sql<unknown>`(select json_agg(json_build_object('id', e.id, 'uuid', e.uuid, 'at', e.at)) from e)`.as(
        'storedEvents',
      ),
      ((also as RawBuilder<unknown> | undefined) ?? sql<unknown>`null`).as('also'),
    ])
    .executeTakeFirstOrThrow();
  const {
    storedEvents: returned,
    also: value,
    ...job
  } = row as unknown as JobRow & {
    storedEvents: Array<{ id: number; uuid: string; at: string }> | null;
    also: T | undefined;
  };
  return { job: job as JobRow, stored: storedEvents(rows, returned ?? [], events), also: value ?? undefined };
}

/**
 * Several finished jobs (a batch of pool hand-outs, lease/hand-out-batch.ts) with all their events
 * in ONE statement: the batch's transaction spends one round trip on them, whatever its size.
 */
export async function insertFinishedJobs(
  tx: Tx,
  items: Array<{ values: ReturnType<typeof finishedJobValues>; events: EventInput[] }>,
): Promise<Array<{ job: JobRow; stored: CloudEvent[] }>> {
  if (items.length === 0) return [];
  const eventRows = items.map((item) => eventValues(item.events));
  const rows = await tx
    .with('e', (qb) => qb.insertInto('events').values(eventRows.flat()).returning(['id', 'uuid', 'at']))
    .insertInto('jobs')
    .values(items.map((item) => item.values))
    .returningAll()
    .returning(
      sql<unknown>`(select json_agg(json_build_object('id', e.id, 'uuid', e.uuid, 'at', e.at)) from e)`.as(
        'storedEvents',
      ),
    )
    .execute();
  // every row carries all the batch's events; storedEvents picks each job's own by uuid
  const returned = ((rows[0] as unknown as { storedEvents: unknown }).storedEvents ?? []) as Array<{
    id: number;
    uuid: string;
    at: string;
  }>;
  const byUuid = new Map(rows.map((r) => [(r as unknown as JobRow).uuid, r as unknown as JobRow]));
  return items.map((item, i) => {
    const { storedEvents: _s, ...job } = byUuid.get(item.values.uuid) as JobRow & { storedEvents: unknown };
    return { job: job as JobRow, stored: storedEvents(eventRows[i] ?? [], returned, item.events) };
  });
}
