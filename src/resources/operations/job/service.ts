/** Jobs as a queryable kind: every account sees its own jobs, the admin sees all. */
import { jobs as contract } from '../../../contract/foundation.js';
import { type JobRow, jobToApi } from '../../../engine/jobs.js';

/** how long a request may wait for a job (also the API's ?wait=true bound) */
export const WAIT_LIMIT_MS = 60_000;

import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { loadVisible } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';

export const jobSchema: KindSchema = {
  kind: 'jobs',
  table: 'jobs',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    kind: 'string',
    state: { enum: ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'] },
    progress: 'int',
    progressMessage: 'string',
    accountUuid: 'uuid',
    userUuid: 'uuid',
    resourceKind: 'string',
    resourceUuid: 'uuid',
    requestId: 'string',
    createdAt: 'timestamp',
    startedAt: 'timestamp',
    finishedAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  selectOnly: ['result', 'error', 'flow'],
  defaultSort: 'createdAt',
};

export class JobService implements KindService {
  readonly contract = contract;
  readonly schema = jobSchema;

  constructor(private readonly ctx: ServiceContext) {}

  present = (row: Record<string, unknown>) => jobToApi(row as JobRow);

  /** `?wait=true` long-polls: answers once the job finished, or after 60 s with its current state. */
  async get(caller: Caller, uuid: string, query: Record<string, unknown>) {
    await loadVisible(this.ctx, this.schema, uuid, caller);
    const row =
      query.wait === 'true'
        ? await this.ctx.engine.waitFor(uuid, WAIT_LIMIT_MS)
        : await this.ctx.engine.load(uuid);
    return jobToApi(row!);
  }

  actions = {
    cancel: async (caller: Caller, uuid: string) => {
      await loadVisible(this.ctx, this.schema, uuid, caller);
      return this.ctx.engine.cancel(uuid);
    },
  };
}
