/**
 * The job-row statements the engine runs on its hot path, each one round trip: claim (with the
 * previous state read under a row lock, and the Running event), journal save, finish (outcome,
 * final journal and event). Every one is conditional on `owner_node = nodeId`: a node that lost
 * a job (presumed dead) can never write it again.
 */
import { sql } from 'kysely';
import type { Db } from '../db/pool.js';
import type { FlowJournal } from '../db/schema.js';
import { CloudError, toErrorBody } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import type { EventInput } from './events.js';
import type { FlowOutcome } from './flow.js';
import type { JobRow } from './jobs.js';

/** An event row written by one of these statements, to be published after it returns. */
export interface StoredEvent {
  uuid: string;
  id: string | number;
  at: Date | string | null;
}

/** What claimJob answers when the job's queue has no free slot (another node runs its work). */
export const QUEUE_BUSY = 'busy' as const;

/**
 * Claims the job (Pending or Running → Running, owned by this node) and inserts its
 * job.state.changed event in one statement: the previous state is read under a row lock in the
 * same statement, so a job found Running was interrupted by a node's death (no event then).
 *
 * A Pending job also takes a free slot of its queue (`queue_slot` in 0 … parallelism-1): the
 * unique index over the Running jobs' (queue_key, queue_slot) makes two claims of one slot
 * impossible whichever nodes run them, so the operations on one resource are serialized across
 * the cluster. No free slot, or a slot another claim took first: QUEUE_BUSY (try again once a job
 * of that queue ends). A Running job (recovered from a dead node) keeps the slot it holds.
 */
export async function claimJob(
  db: Db,
  nodeId: string,
  uuid: string,
  queue: { key: string; parallelism: number },
): Promise<{ row: JobRow; wasInterrupted: boolean; event?: StoredEvent } | typeof QUEUE_BUSY | undefined> {
  const now = new Date();
  const eventUuid = newId();
  let res: {
    rows: Array<
      JobRow & { claimed: boolean; previousState: string; eventId: string | null; eventAt: Date | null }
    >;
  };
  try {
    res = await sql<
      JobRow & { claimed: boolean; previousState: string; eventId: string | null; eventAt: Date | null }
    >`
      with prev as (
        select uuid, state from jobs
        where uuid = ${uuid} and owner_node = ${nodeId} and state in ('Pending', 'Running')
        for update
      ), free as (
        select s as slot from generate_series(0, ${queue.parallelism}::int - 1) s
        where not exists (select 1 from jobs r
          where r.queue_key = ${queue.key} and r.state = 'Running' and r.queue_slot = s)
        order by s limit 1
      ), j as (
        update jobs set state = 'Running', started_at = coalesce(jobs.started_at, ${now}), updated_at = ${now},
          queue_slot = case when prev.state = 'Running' then jobs.queue_slot else (select slot from free) end
        from prev where jobs.uuid = prev.uuid and (prev.state = 'Running' or exists (select 1 from free))
        returning jobs.*, prev.state as previous_state
      ), e as (
        insert into events (uuid, type, resource_kind, resource_uuid, account_uuid, job_uuid, data)
        select ${eventUuid}, 'job.state.changed', 'jobs', j.uuid, j.account_uuid, j.uuid,
          jsonb_build_object('kind', j.kind, 'state', 'Running', 'resourceKind', j.resource_kind,
            'resourceUuid', j.resource_uuid)
        from j where j.previous_state = 'Pending'
        returning id, at
      )
      select j.*, j.uuid is not null as claimed, e.id as event_id, e.at as event_at
      from prev left join j on true left join e on true`.execute(db);
  } catch (err) {
    // another node's claim took the same slot between our look and our update
    if ((err as { code?: string }).code === '23505') return QUEUE_BUSY;
    throw err;
  }
  const found = res.rows[0];
  if (!found) return undefined;
  if (!found.claimed) return QUEUE_BUSY;
  const { previousState, eventId, eventAt, claimed: _claimed, ...row } = found;
  return {
    row: row as JobRow,
    wasInterrupted: previousState === 'Running',
    ...(eventId !== null ? { event: { uuid: eventUuid, id: eventId, at: eventAt } } : {}),
  };
}

/** Writes the journal (and progress); throws JOB_OWNERSHIP_LOST when another node took the job. */
export async function saveJournal(
  db: Db,
  nodeId: string,
  uuid: string,
  journal: FlowJournal,
  p?: { percent: number; message: string },
): Promise<void> {
  const res = await db
    .updateTable('jobs')
    .set({
      flow: JSON.stringify(journal),
      updatedAt: new Date(),
      ...(p ? { progress: p.percent, progressMessage: p.message } : {}),
    })
    .where('uuid', '=', uuid)
    .where('ownerNode', '=', nodeId)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) {
    // another node took the job over (we were presumed dead): stop touching it
    throw new CloudError('Conflict', 'JOB_OWNERSHIP_LOST', `job ${uuid} is no longer owned by this node`);
  }
}

/**
 * Records the outcome, the final journal and the job.state.changed event in one statement
 * (conditional on this node still owning the job).
 */
export async function finishJob(
  db: Db,
  nodeId: string,
  job: JobRow,
  outcome: FlowOutcome,
  journal: FlowJournal | undefined,
): Promise<{ row: JobRow; event: StoredEvent } | undefined> {
  const state = outcome.ok ? 'Succeeded' : 'Failed';
  const error = outcome.ok ? null : withRollbackFailures(outcome.failure, outcome.rollbackFailures);
  const result = outcome.ok ? JSON.stringify(outcome.result ?? null) : null;
  const flow = journal ? JSON.stringify(journal) : null;
  const message = outcome.ok ? 'done' : null;
  const now = new Date();
  const eventUuid = newId();
  const res = await sql<JobRow & { eventId: string; eventAt: Date }>`
      with j as (
        update jobs set state = ${state}, progress = 100, result = ${result}::jsonb,
          error = ${error === null ? null : JSON.stringify(error)}::jsonb,
          flow = coalesce(${flow}::jsonb, flow),
          progress_message = coalesce(${message}::text, progress_message),
          finished_at = ${now}, updated_at = ${now}
        where uuid = ${job.uuid} and owner_node = ${nodeId}
        returning *
      ), e as (
        insert into events (uuid, type, resource_kind, resource_uuid, account_uuid, job_uuid, data)
        select ${eventUuid}, 'job.state.changed', 'jobs', j.uuid, j.account_uuid, j.uuid,
          jsonb_build_object('kind', j.kind, 'state', j.state, 'resourceKind', j.resource_kind,
            'resourceUuid', j.resource_uuid, 'queueKey', j.queue_key)
        from j
        returning id, at
      )
      select j.*, e.id as event_id, e.at as event_at from j left join e on true`.execute(db);
  const found = res.rows[0];
  if (!found) return undefined;
  const { eventId, eventAt, ...row } = found;
  return { row, event: { uuid: eventUuid, id: eventId, at: eventAt } };
}

export function withRollbackFailures(failure: unknown, rollbackFailures: unknown[]): Record<string, unknown> {
  const body = (failure ?? toErrorBody(new Error('unknown failure'))) as Record<string, unknown>;
  if (rollbackFailures.length === 0) return body;
  const details = (body.details as Record<string, unknown> | undefined) ?? {};
  return { ...body, details: { ...details, rollbackFailures } };
}

export function jobEvent(job: JobRow, state: string): EventInput {
  return {
    type: 'job.state.changed',
    resourceKind: 'jobs',
    resourceUuid: job.uuid,
    accountUuid: job.accountUuid,
    jobUuid: job.uuid,
    data: { kind: job.kind, state, resourceKind: job.resourceKind, resourceUuid: job.resourceUuid },
  };
}
