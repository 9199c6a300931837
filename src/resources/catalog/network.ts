/** The networking family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import type { KindService, ServiceContext } from '../service.js';

export const networkSchemas: KindSchema[] = [];

export function networkServices(_ctx: ServiceContext): KindService[] {
  return [];
}
