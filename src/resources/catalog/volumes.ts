/** The volumes family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import type { KindService, ServiceContext } from '../service.js';

export const volumesSchemas: KindSchema[] = [];

export function volumesServices(_ctx: ServiceContext): KindService[] {
  return [];
}
