/** Wire shapes of the storage kinds (see kinds.ts for KindContract). */
import type { KindContract } from './kinds.js';

export const STORAGE_KINDS: KindContract[] = [];
