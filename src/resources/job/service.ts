/** Jobs as a queryable kind: every account sees its own jobs, the admin sees all. */
import { jobs as contract } from '../../contract/kinds.js';
import { type JobRow, jobToApi } from '../../engine/jobs.js';
import type { KindSchema } from '../../engine/query/schema.js';
import type { Caller } from '../../kernel/caller.js';
import { loadVisible } from '../common.js';
import type { KindService, ServiceContext } from '../service.js';

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

  actions = {
    cancel: async (caller: Caller, uuid: string) => {
      await loadVisible(this.ctx, this.schema, uuid, caller);
      return this.ctx.engine.cancel(uuid);
    },
  };
}
