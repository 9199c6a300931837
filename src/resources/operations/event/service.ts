/** Events as a queryable kind (the audit trail), ordered by their sequence number. */
import { events as contract } from '../../../contract/foundation.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { KindService } from '../../service.js';

export const eventSchema: KindSchema = {
  kind: 'events',
  table: 'events',
  key: 'id',
  visibility: 'owned',
  fields: {
    id: 'int',
    uuid: 'uuid',
    at: 'timestamp',
    type: 'string',
    resourceKind: 'string',
    resourceUuid: 'uuid',
    accountUuid: 'uuid',
    jobUuid: 'uuid',
  },
  selectOnly: ['data'],
  defaultSort: 'id',
};

export class EventService implements KindService {
  readonly contract = contract;
  readonly schema = eventSchema;
  present = (row: Record<string, unknown>) => ({
    ...row,
    ...(row.id !== undefined ? { id: String(row.id) } : {}),
  });
}
