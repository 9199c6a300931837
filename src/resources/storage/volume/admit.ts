/**
 * Submitting a volume-family job: the job row and whatever the admission reserves (quota, VM,
 * capacity, records) commit in one transaction, so a refusal leaves nothing and an accepted
 * request is never lost. Jobs that touch a VM run in that VM's queue (`vm:<uuid>`), after the
 * VM's own operations; the others in the volume's (`volume:<uuid>`).
 */

import type { Tx } from '../../../db/transaction.js';
import type { EventBatch } from '../../../engine/events.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { Caller } from '../../../kernel/caller.js';
import type { Family } from '../../common.js';
import type { ServiceContext } from '../../service.js';

export interface Admission {
  family: Family;
  kind: string;
  resource: { uuid: string; accountUuid: string };
  /** the VM the job holds, if any: the job runs in its queue */
  vmUuid?: string | null;
  /** the queue otherwise (default `<singular>:<uuid>`) */
  queueKey?: string;
  params?: Record<string, unknown>;
  /** steps carried out by `prepare`, journaled as done */
  done?: string[];
  prepare?: (tx: Tx, batch: EventBatch) => Promise<void>;
}

export function admit(ctx: ServiceContext, caller: Caller, a: Admission): Promise<JobRow> {
  return ctx.engine.submitAndStart(
    {
      kind: a.kind,
      params: { uuid: a.resource.uuid, ...a.params },
      accountUuid: a.resource.accountUuid,
      userUuid: caller.userUuid,
      resourceKind: a.family.kind,
      resourceUuid: a.resource.uuid,
      queueKey: a.vmUuid ? `vm:${a.vmUuid}` : (a.queueKey ?? `${a.family.singular}:${a.resource.uuid}`),
      requestId: caller.requestId,
      ...(a.done ? { done: a.done } : {}),
    },
    a.prepare,
  );
}
