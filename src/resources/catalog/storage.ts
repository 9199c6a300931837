/** The storage family's kinds: their query schemas and services, registered by node.ts. */
import type { KindSchema } from '../../engine/query/schema.js';
import type { KindService, ServiceContext } from '../service.js';

export const storageSchemas: KindSchema[] = [];

export function storageServices(_ctx: ServiceContext): KindService[] {
  return [];
}
