/**
 * `<uuid-or-name>` → uuid. A UUID is used as is (no round trip); anything else is looked up as an
 * exact name with the list API, and must match exactly one resource: names are unique only per
 * account and kind, so an admin may see several, and guessing would act on the wrong one.
 * Kinds without a `name` (jobs, events, tags) take their id verbatim.
 */
import type { KindContract } from './catalog.js';
import { LocalError } from './errors.js';
import { asJsonSchema } from './flags.js';
import type { ApiClient } from './http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

export function hasName(kind: KindContract): boolean {
  return asJsonSchema(kind.resource).properties?.name !== undefined;
}

export async function resolveId(client: ApiClient, kind: KindContract, nameOrUuid: string): Promise<string> {
  if (isUuid(nameOrUuid) || !hasName(kind)) return nameOrUuid;
  const res = await client.get(`/v1/${kind.kind}`, [
    ['q', `name=${nameOrUuid}`],
    ['limit', '5'],
    ['fields', 'uuid,name'],
  ]);
  const items = itemsOf(res.body);
  const uuids = items.map((i) => (typeof i.uuid === 'string' ? i.uuid : '')).filter((u) => u !== '');
  if (uuids.length === 0) throw new LocalError('NOT_FOUND', `no ${kind.singular} named '${nameOrUuid}'`);
  if (uuids.length > 1) {
    throw new LocalError(
      'AMBIGUOUS_NAME',
      `${uuids.length === 5 ? '5 or more' : uuids.length} ${kind.kind} are named '${nameOrUuid}': use a uuid (${uuids.join(', ')})`,
    );
  }
  return uuids[0] ?? nameOrUuid;
}

export function itemsOf(page: unknown): Array<Record<string, unknown>> {
  if (typeof page !== 'object' || page === null || !('items' in page) || !Array.isArray(page.items))
    return [];
  return page.items.filter((i): i is Record<string, unknown> => typeof i === 'object' && i !== null);
}
