/** The compute family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import type { KindService, ServiceContext } from '../service.js';

export const computeSchemas: KindSchema[] = [];

export function computeServices(_ctx: ServiceContext): KindService[] {
  return [];
}
