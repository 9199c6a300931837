/** Wire shapes of the compute kinds (see kinds.ts for KindContract). */
import type { KindContract } from './kinds.js';

export const COMPUTE_KINDS: KindContract[] = [];
