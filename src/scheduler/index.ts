/**
 * VM placement: given a request and the candidate hosts (loaded by the caller), return the hosts
 * that can take the VM, best first, each with the primary storage for its volumes; or none and
 * a sentence saying why. Filter → weigh → random draw among the top N, as in Nova and ZStack.
 *
 * Invariants:
 * - Pure: no I/O, no clock, no global state; randomness only through the injected `random`.
 *   The same inputs and the same random source give the same result.
 * - Every returned host passes every filter; every rejected host fails at least one, and is
 *   counted once, under the first filter (in FILTER_NAMES order) that rejects it.
 * - Candidates are never copied or mutated; a RankedHost points at the caller's objects.
 * - The capacity formulas (capacity.ts) are the ones the caller's conditional reservation UPDATE
 *   must use; the scheduler only proposes, the UPDATE decides, so a stale candidate list can cost
 *   a retry on the next host but never over-commit a host.
 * - O(n log n) in the candidates; the per-host filter path allocates nothing.
 */

export { diskBytes, freeCpu, freeMemory, freeStorage, storageNeed } from './capacity.js';
export { DEFAULT_CONFIG, DEFAULT_WEIGHTS, GiB, MiB, resolveConfig } from './config.js';
export { createContext, type PlacementContext, validateRequest } from './context.js';
export { explain } from './explain.js';
export { FILTERS, type Filter, filterByName, firstFailing, pickStorage } from './filters.js';
export { formatBytes, formatBytesPair, plural } from './format.js';
export { seededRandom } from './random.js';
export { drawFirst, emptyCounts, schedule } from './schedule.js';
export * from './types.js';
export { WEIGHERS, type Weigher, type WeigherName, weigh } from './weighers.js';
