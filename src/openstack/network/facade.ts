/**
 * What the Neutron and Cinder façades share: reading rows of a kind with the caller's
 * visibility (the query engine, as /v1 lists do), OpenStack's `limit`/`marker` paging with its
 * `links`, and calling a kind service then waiting for its job (bounded).
 *
 * Invariants:
 * - every read goes through the kind's query schema (runListQuery / getVisibleRow), so another
 *   account's row is invisible here exactly as on /v1 — a 404, never a 403;
 * - a job that fails is answered with its own CloudError (the status comes from its reason);
 * - a job that outlives the wait is not an error: the caller answers with the current state.
 */
import type { FastifyRequest } from 'fastify';
import type { JobRow } from '../../engine/jobs.js';
import { getVisibleRow, MAX_LIMIT, parseListQuery, runListQuery } from '../../engine/query/index.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, type ErrorBody, invalid, invalidField, notFound } from '../../kernel/errors.js';
import { isUuid } from '../../kernel/ids.js';
import type { KindService } from '../../resources/service.js';
import type { OpenStackDeps } from '../deps.js';

/** how long a synchronous OpenStack call waits for its Nimbus job before answering the current state */
export const SYNC_WAIT_MS = 30_000;

export function serviceOf(deps: OpenStackDeps, kind: string): KindService {
  const svc = deps.services.get(kind);
  if (!svc) throw new Error(`the OpenStack façade needs the ${kind} service`);
  return svc;
}

/** the kind's API shape of a row (as /v1 shows it) */
export async function present(deps: OpenStackDeps, kind: string, row: Record<string, unknown>) {
  const svc = serviceOf(deps, kind);
  return (svc.present ? await svc.present(row) : row) as Record<string, unknown>;
}

export async function visible(
  deps: OpenStackDeps,
  kind: string,
  uuid: string,
  caller: Caller,
): Promise<Record<string, unknown> | undefined> {
  if (!isUuid(uuid)) return undefined;
  const row = await getVisibleRow(deps.db, serviceOf(deps, kind).schema, uuid, caller);
  return row && present(deps, kind, row);
}

/** the row, or a 404 in the façade's words (`what` is the OpenStack noun: network, subnet…) */
export async function mustSee(
  deps: OpenStackDeps,
  kind: string,
  uuid: string,
  caller: Caller,
  what: string,
): Promise<Record<string, unknown>> {
  const row = await visible(deps, kind, uuid, caller);
  if (!row) throw notFound(what, uuid);
  return row;
}

/** every visible row matching `q` (query-language conditions), up to MAX_LIMIT */
export async function listAll(
  deps: OpenStackDeps,
  kind: string,
  caller: Caller,
  q: string[],
): Promise<Record<string, unknown>[]> {
  const schema = serviceOf(deps, kind).schema;
  const query = parseListQuery({ q, limit: String(MAX_LIMIT) }, schema, deps.registry, caller);
  const page = await runListQuery(deps.db, deps.registry, schema, query, caller);
  return Promise.all(page.items.map((r) => present(deps, kind, r)));
}

export interface Paging {
  limit: number;
  marker?: string;
  reverse: boolean;
}

/** `limit`, `marker`, `page_reverse` of a list request; a bad one is a 400 naming it */
export function pagingOf(query: Record<string, unknown>): Paging {
  const limitText = query.limit;
  let limit = MAX_LIMIT;
  if (limitText !== undefined) {
    const n = typeof limitText === 'string' && /^\d+$/.test(limitText) ? Number(limitText) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1)
      throw invalidField('limit', `must be a positive integer, not '${String(limitText)}'`);
    // OpenStack: a limit beyond the deployment's maximum gets the maximum
    limit = Math.min(n, MAX_LIMIT);
  }
  const marker = query.marker;
  if (marker !== undefined && (typeof marker !== 'string' || !isUuid(marker)))
    throw invalidField('marker', `must be the id of an item of the previous page, not '${String(marker)}'`);
  const reverse = String(query.page_reverse ?? 'false').toLowerCase() === 'true';
  return { limit, ...(marker ? { marker: marker.toLowerCase() } : {}), reverse };
}

export interface Page {
  rows: Record<string, unknown>[];
  /** links of the page (`<collection>_links` / `<collection>_links`) */
  links: { rel: 'next' | 'previous'; href: string }[];
}

/**
 * One page in id order (OpenStack lists page "in the ascending order of ID"; our ids are v7
 * UUIDs, so that is creation order too). Fetches one row more than the limit to know whether a
 * next page exists; a marker that names no visible row is a 400, as the references say.
 */
export async function listPage(
  deps: OpenStackDeps,
  request: FastifyRequest,
  kind: string,
  caller: Caller,
  q: string[],
): Promise<Page> {
  const query = request.query as Record<string, unknown>;
  const paging = pagingOf(query);
  const schema = serviceOf(deps, kind).schema;
  if (paging.marker && !(await getVisibleRow(deps.db, schema, paging.marker, caller)))
    throw invalidField('marker', `no item ${paging.marker} in this list`);
  const conditions = [...q];
  if (paging.marker) conditions.push(`uuid${paging.reverse ? '<' : '>'}${paging.marker}`);
  const parsed = parseListQuery(
    {
      q: conditions,
      sort: paging.reverse ? '-uuid' : 'uuid',
      limit: String(Math.min(paging.limit + 1, MAX_LIMIT)),
    },
    schema,
    deps.registry,
    caller,
  );
  const result = await runListQuery(deps.db, deps.registry, schema, parsed, caller);
  const more = result.items.length > paging.limit;
  let rows = result.items.slice(0, paging.limit);
  if (paging.reverse) rows = rows.reverse();
  const presented = await Promise.all(rows.map((r) => present(deps, kind, r)));
  const links = linksOf(
    request,
    paging,
    presented[0]?.uuid as string,
    presented.at(-1)?.uuid as string,
    more,
  );
  return { rows: presented, links };
}

/** the next/previous links of a page whose first and last ids are given (`more`: a row beyond it) */
export function linksOf(
  request: FastifyRequest,
  paging: Paging,
  first: string | undefined,
  last: string | undefined,
  more: boolean,
): Page['links'] {
  const links: Page['links'] = [];
  const forwardMore = paging.reverse ? paging.marker !== undefined : more;
  const backwardMore = paging.reverse ? more : paging.marker !== undefined;
  if (forwardMore && last) links.push({ rel: 'next', href: linkTo(request, paging.limit, last, false) });
  if (backwardMore && first)
    links.push({ rel: 'previous', href: linkTo(request, paging.limit, first, true) });
  return links;
}

function linkTo(request: FastifyRequest, limit: number, marker: string, reverse: boolean): string {
  const [path, search] = request.url.split('?') as [string, string | undefined];
  const params = new URLSearchParams(search ?? '');
  params.set('limit', String(limit));
  params.set('marker', marker);
  if (reverse) params.set('page_reverse', 'True');
  else params.delete('page_reverse');
  return `${request.protocol}://${request.headers.host ?? 'localhost'}${path}?${params.toString()}`;
}

/** a failed job's error as the CloudError it was (status from its reason) */
export function jobError(job: JobRow): CloudError {
  const body = (job.error ?? {}) as Partial<ErrorBody>;
  return new CloudError(
    body.reason ?? 'Internal',
    body.code ?? 'JOB_FAILED',
    body.message ?? `job ${job.uuid} failed`,
    {
      ...(body.details ? { details: body.details } : {}),
    },
  );
}

/**
 * Waits (bounded) for a job. Failed or cancelled: throws its error. Still running after the
 * wait: returns it unfinished (the caller answers with the resource's current state).
 */
export async function settle(deps: OpenStackDeps, job: JobRow, waitMs = SYNC_WAIT_MS): Promise<JobRow> {
  const current = (await deps.engine.waitFor(job.uuid, waitMs)) ?? job;
  if (current.state === 'Failed') throw jobError(current);
  if (current.state === 'Cancelled')
    throw new CloudError('Conflict', 'JOB_CANCELLED', `job ${current.uuid} was cancelled`);
  return current;
}

export const isDone = (job: JobRow) => job.state === 'Succeeded';

/** the OpenStack timestamp shape (ISO 8601 without milliseconds, UTC) */
export function stamp(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return `${new Date(v as string).toISOString().slice(0, 19)}Z`;
}

/** a query parameter as one string (a repeated one takes its first), or undefined */
export function param(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) return v.length > 0 ? String(v[0]) : undefined;
  return v === undefined ? undefined : String(v);
}

/** `True`/`true`/`1` and their opposites, as OpenStack filters spell booleans */
export function boolParam(query: Record<string, unknown>, name: string): boolean | undefined {
  const v = param(query, name);
  if (v === undefined) return undefined;
  const t = v.toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw invalidField(name, `must be true or false, not '${v}'`);
}

/** an id filter: a non-uuid can match nothing (the query engine would refuse it) */
export function idCondition(field: string, value: string): string {
  return isUuid(value) ? `${field}=${value}` : `${field}=null`;
}

/** what every list takes besides its filters */
const LIST_PARAMS = ['limit', 'marker', 'page_reverse', 'fields', 'sort_key', 'sort_dir'];

/**
 * Refuses a list parameter the façade does not apply (a filter silently ignored would answer
 * more than was asked): every unknown one named at once. Sorting is by id only (the `sorting`
 * extension is not listed), so `sort_key` other than id and `sort_dir` other than asc are refused.
 */
export function refuseUnknown(query: Record<string, unknown>, filters: string[]): void {
  const problems: { field: string; problem: string }[] = [];
  for (const name of Object.keys(query)) {
    if (!LIST_PARAMS.includes(name) && !filters.includes(name))
      problems.push({
        field: name,
        problem: `is not a filter of this list (filters: ${filters.join(', ')})`,
      });
  }
  const key = param(query, 'sort_key');
  if (key !== undefined && key !== 'id')
    problems.push({ field: 'sort_key', problem: 'lists are sorted by id only' });
  const dir = param(query, 'sort_dir');
  if (dir !== undefined && dir !== 'asc')
    problems.push({ field: 'sort_dir', problem: 'lists are sorted by id ascending only' });
  if (problems.length > 0) throw invalid(problems, 'INVALID_FILTER');
}

/** `fields=a&fields=b` (or `fields=a,b`): only those attributes of each item, as Neutron answers */
export function pickFields<T extends Record<string, unknown>>(
  query: Record<string, unknown>,
  items: T[],
): Record<string, unknown>[] {
  const given = query.fields;
  if (given === undefined) return items;
  const fields = (Array.isArray(given) ? given : [given]).flatMap((f) => String(f).split(','));
  return items.map((item) => Object.fromEntries(fields.filter((f) => f in item).map((f) => [f, item[f]])));
}
