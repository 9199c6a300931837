/**
 * Events as a queryable kind (the audit trail), ordered by their sequence number. Lists are keyed
 * by that number (`id`), but `GET /v1/events/{uuid}` names an event by its uuid like every kind.
 */
import { events as contract } from '../../../contract/foundation.js';
import type { Db } from '../../../db/pool.js';
import { getVisibleRow } from '../../../engine/query/index.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { notFound } from '../../../kernel/errors.js';
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

/** The same kind keyed by uuid, for reading one event. */
const byUuid: KindSchema = { ...eventSchema, key: 'uuid' };

export class EventService implements KindService {
  readonly contract = contract;
  readonly schema = eventSchema;

  constructor(private readonly db: Db) {}

  get = async (caller: Caller, uuid: string) => {
    const row = await getVisibleRow(this.db, byUuid, uuid, caller);
    if (!row) throw notFound('event', uuid);
    return this.present(row);
  };
  present = (row: Record<string, unknown>) => ({
    ...row,
    ...(row.id !== undefined ? { id: String(row.id) } : {}),
  });
}
