/**
 * Rows that every create admits against — its image, instance offering, L3 networks — read
 * through a short cache, so a burst of 10,000 creates of the same image on the same network
 * does not read them 10,000 times (each read is a database round trip on the hot path).
 *
 * Only usable rows are cached (a Ready image, an Enabled offering, an Enabled L3 with ranges): a
 * refusal is always decided on fresh data. A row is dropped as soon as this node publishes an
 * event about it (update, disable, delete …), and loads of one key in flight are shared, so a
 * cold burst reads once. A change made through another management node is seen within
 * ADMISSION_CACHE_MS — the same as if the create had arrived that much earlier.
 */
import type { EventBus } from '../engine/events.js';

export const ADMISSION_CACHE_MS = 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  value: unknown;
  at: number;
}

/** by uuid (uuids are unique across tables) */
const entries = new Map<string, Entry>();
const loading = new Map<string, { promise: Promise<unknown>; dropped: boolean }>();

/** The row `uuid`, from the cache or `load`; stored only when `usable` says so. */
export async function cachedRow<T>(
  uuid: string,
  load: () => Promise<T | undefined>,
  usable: (row: T) => boolean,
): Promise<T | undefined> {
  const hit = entries.get(uuid);
  if (hit && Date.now() - hit.at < ADMISSION_CACHE_MS) return hit.value as T;
  const inFlight = loading.get(uuid);
  if (inFlight) return inFlight.promise as Promise<T | undefined>;
  const state = { promise: undefined as unknown as Promise<T | undefined>, dropped: false };
  state.promise = load()
    .then((row) => {
      // a change announced while the row was being read may not be in what was read
      if (row !== undefined && usable(row) && !state.dropped) {
        if (entries.size >= MAX_ENTRIES) entries.clear();
        entries.set(uuid, { value: row, at: Date.now() });
      }
      return row;
    })
    .finally(() => loading.delete(uuid));
  loading.set(uuid, state);
  return state.promise;
}

/** Drops whatever is cached about `uuid`. */
export function forgetRow(uuid: string): void {
  entries.delete(uuid);
  const inFlight = loading.get(uuid);
  if (inFlight) inFlight.dropped = true;
}

/** Drops rows as this node's events name them (call once per node). */
export function forgetOnEvents(events: EventBus): () => void {
  return events.subscribe((e) => forgetRow(e.resourceUuid));
}
