/**
 * Names instead of uuids: one list request per related kind for all the uuids a page shows
 * (`GET /v1/<kind>?q=uuid?=a,b&fields=uuid,name`), cached by the query cache. Kinds the caller
 * may not see are not asked for.
 */
import { useQueries } from '@tanstack/react-query';
import { kindOf, queryInfo } from './catalog';
import { get, type ListPage, listPath } from './client';
import { getSession } from './session';

export type Names = Map<string, string>;

export function canResolve(kind: string): boolean {
  const k = kindOf(kind);
  const q = queryInfo(kind);
  if (!k || !q || !('name' in q.fields)) return false;
  return getSession()?.isAdmin === true || q.visibility !== 'admin';
}

/** uuids per kind → one Map of uuid → name over all of them. */
export function useNames(wanted: Record<string, Set<string>>): Names {
  const entries = Object.entries(wanted).filter(([kind, set]) => set.size > 0 && canResolve(kind));
  const results = useQueries({
    queries: entries.map(([kind, set]) => {
      const uuids = [...set].sort().slice(0, 200);
      return {
        queryKey: ['names', kind, uuids],
        queryFn: () =>
          get<ListPage<{ uuid: string; name: string }>>(
            listPath(kind, {
              q: [`uuid?=${uuids.join(',')}`],
              fields: ['uuid', 'name'],
              limit: uuids.length,
            }),
          ),
        staleTime: 30_000,
      };
    }),
  });
  const names: Names = new Map();
  for (const r of results) for (const item of r.data?.items ?? []) names.set(item.uuid, item.name);
  return names;
}
