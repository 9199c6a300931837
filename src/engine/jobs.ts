/** Job rows: creation, state transitions (always conditional), and their API shape. */
import type { Selectable } from 'kysely';
import type { Job } from '../contract/common.js';
import type { JobTable } from '../db/schema.js';
import type { Executor } from '../db/transaction.js';
import { newId } from '../kernel/ids.js';
import { newJournal } from './flow.js';

export type JobRow = Selectable<JobTable>;

export interface JobSpec {
  kind: string;
  params?: Record<string, unknown>;
  accountUuid: string;
  userUuid?: string | null;
  resourceKind?: string | null;
  resourceUuid?: string | null;
  /** the per-resource queue the job runs in, e.g. `host:<uuid>` */
  queueKey: string;
  requestId?: string | null;
  /** initial journal data for the flow */
  data?: Record<string, unknown>;
  /** steps already carried out in the submitting transaction (their rollbacks still apply) */
  done?: string[];
}

export async function insertJob(exec: Executor, spec: JobSpec, ownerNode: string): Promise<JobRow> {
  return exec.insertInto('jobs').values(jobValues(spec, ownerNode)).returningAll().executeTakeFirstOrThrow();
}

/** A new Pending job's row (uuid given or made). */
export function jobValues(spec: JobSpec, ownerNode: string, uuid = newId()) {
  return {
    uuid,
    kind: spec.kind,
    state: 'Pending',
    progress: 0,
    accountUuid: spec.accountUuid,
    userUuid: spec.userUuid ?? null,
    resourceKind: spec.resourceKind ?? null,
    resourceUuid: spec.resourceUuid ?? null,
    queueKey: spec.queueKey,
    params: JSON.stringify(spec.params ?? {}),
    flow: JSON.stringify({ ...newJournal(spec.data ?? {}), done: spec.done ?? [] }),
    ownerNode,
    requestId: spec.requestId ?? null,
  } as const;
}

export function isFinished(state: JobRow['state']): boolean {
  return state === 'Succeeded' || state === 'Failed' || state === 'Cancelled';
}

export function jobToApi(row: JobRow): Job {
  const flow = row.flow as JobRow['flow'] & {
    phase?: string;
    done?: string[];
    current?: string | null;
    rolledBack?: string[];
  };
  return {
    uuid: row.uuid,
    kind: row.kind,
    state: row.state,
    progress: row.progress,
    progressMessage: row.progressMessage,
    resourceKind: row.resourceKind,
    resourceUuid: row.resourceUuid,
    accountUuid: row.accountUuid,
    userUuid: row.userUuid,
    result: row.result ?? null,
    error: row.error ?? null,
    ...(flow?.phase
      ? {
          steps: {
            phase: flow.phase,
            done: flow.done ?? [],
            current: flow.current ?? null,
            ...(flow.phase === 'rollback' ? { rolledBack: flow.rolledBack ?? [] } : {}),
          },
        }
      : {}),
    requestId: row.requestId,
    createdAt: new Date(row.createdAt).toISOString(),
    startedAt: row.startedAt ? new Date(row.startedAt).toISOString() : null,
    finishedAt: row.finishedAt ? new Date(row.finishedAt).toISOString() : null,
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}
