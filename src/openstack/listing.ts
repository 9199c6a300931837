/**
 * Lists on the façade go through the native query language (engine/query), so visibility and
 * filtering are the native API's own. OpenStack paging is `limit` + `marker` (the id of the last
 * item seen), newest first for Nova and Glance: a marker page asks for rows created no later than
 * the marker and drops those up to the marker itself (sorting always ends with the key, so equal
 * timestamps keep one order).
 */
import type { FastifyRequest } from 'fastify';
import { callerOf } from '../api/auth.js';
import { getVisibleRow, MAX_LIMIT, parseListQuery, runListQuery } from '../engine/query/index.js';
import { CloudError, invalidField } from '../kernel/errors.js';
import type { OpenStackDeps } from './deps.js';

type Row = Record<string, unknown>;

export interface ListOptions {
  /** native q= conditions (`state!=Destroyed`, `name~=web`) */
  q?: string[];
  /** `limit` and `marker` from the OpenStack query string */
  limit?: unknown;
  marker?: unknown;
  /** native sort, default newest first */
  sort?: string;
}

export function schemaOf(deps: OpenStackDeps, kind: string) {
  const svc = deps.services.get(kind);
  if (!svc) throw new Error(`no service for ${kind}`);
  return svc;
}

/** one page (`limit` items after `marker`) and whether more follow */
export async function listPage(
  deps: OpenStackDeps,
  request: FastifyRequest,
  kind: string,
  o: ListOptions,
): Promise<{ items: Row[]; more: boolean }> {
  const svc = schemaOf(deps, kind);
  const caller = callerOf(request);
  let limit = MAX_LIMIT;
  if (o.limit !== undefined) {
    const n = Number(o.limit);
    if (!Number.isInteger(n) || n < 0) throw invalidField('limit', 'a whole number ≥ 0', 'INVALID_LIMIT');
    limit = Math.min(n, MAX_LIMIT);
  }
  const q = [...(o.q ?? [])];
  const sort = o.sort ?? '-createdAt';
  let skipThrough: string | undefined;
  if (typeof o.marker === 'string' && o.marker.length > 0) {
    const row = await getVisibleRow(deps.db, svc.schema, o.marker, caller);
    if (!row) throw new CloudError('NotFound', 'MARKER_NOT_FOUND', `marker ${o.marker} could not be found`);
    const at = new Date(row.createdAt as string | Date).toISOString();
    q.push(sort.startsWith('-') ? `createdAt<=${at}` : `createdAt>=${at}`);
    skipThrough = o.marker;
  }
  // rows sharing the marker's timestamp come back first: ask for enough to step past them
  const extra = skipThrough ? 50 : 0;
  const query = parseListQuery(
    { q, sort, limit: String(Math.min(limit + 1 + extra, MAX_LIMIT)) },
    svc.schema,
    deps.registry,
    caller,
  );
  const page = await runListQuery(deps.db, deps.registry, svc.schema, query, caller);
  let items = page.items;
  if (skipThrough) {
    const at = items.findIndex((r) => r.uuid === skipThrough);
    items = at >= 0 ? items.slice(at + 1) : items;
  }
  return { items: items.slice(0, limit), more: items.length > limit };
}

/** a `q=` value: the native language takes the value as is up to the end */
export const eq = (field: string, value: unknown): string[] =>
  typeof value === 'string' && value.length > 0 ? [`${field}=${value}`] : [];
