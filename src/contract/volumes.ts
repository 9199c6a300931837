/** Wire shapes of the volumes kinds (see kinds.ts for KindContract). */
import type { KindContract } from './kinds.js';

export const VOLUMES_KINDS: KindContract[] = [];
