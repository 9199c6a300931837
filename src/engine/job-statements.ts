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

/**
 * Claims the job (Pending or Running → Running, owned by this node) and inserts its
 * job.state.changed event in one statement: the previous state is read under a row lock in the
 * same statement, so a job found Running was interrupted by a node's death (no event then).
 */
export async function claimJob(
  db: Db,
  nodeId: string,
  uuid: string,
): Promise<{ row: JobRow; wasInterrupted: boolean; event?: StoredEvent } | undefined> {
  const now = new Date();
  const eventUuid = newId();
  const res = await sql<JobRow & { previousState: string; eventId: string | null; eventAt: Date | null }>`
      with prev as (
        select uuid, state from jobs
        where uuid = ${uuid} and owner_node = ${nodeId} and state in ('Pending', 'Running')
        for update
      ), j as (
        update jobs set state = 'Running', started_at = coalesce(jobs.started_at, ${now}), updated_at = ${now}
        from prev where jobs.uuid = prev.uuid
        returning jobs.*, prev.state as previous_state
      ), e as (
        insert into events (uuid, type, resource_kind, resource_uuid, account_uuid, job_uuid, data)
        select ${eventUuid}, 'job.state.changed', 'jobs', j.uuid, j.account_uuid, j.uuid,
          jsonb_build_object('kind', j.kind, 'state', 'Running', 'resourceKind', j.resource_kind,
            'resourceUuid', j.resource_uuid)
        from j where j.previous_state = 'Pending'
        returning id, at
      )
      select j.*, e.id as event_id, e.at as event_at from j left join e on true`.execute(db);
  const found = res.rows[0];
  if (!found) return undefined;
  const { previousState, eventId, eventAt, ...row } = found;
  return {
    row,
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
            'resourceUuid', j.resource_uuid)
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
