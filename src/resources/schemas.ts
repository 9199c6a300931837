/** Every kind's query schema in one registry: nested queries may follow relations to any of them. */
import { createRegistry } from '../engine/query/schema.js';
import { computeSchemas } from './catalog/compute.js';
import { foundationSchemas } from './catalog/foundation.js';
import { networkSchemas } from './catalog/network.js';
import { operationsSchemas } from './catalog/operations.js';
import { selfServiceSchemas } from './catalog/self-service.js';
import { storageSchemas } from './catalog/storage.js';
import { volumesSchemas } from './catalog/volumes.js';

export function kindRegistry() {
  return createRegistry([
    ...foundationSchemas,
    ...storageSchemas,
    ...computeSchemas,
    ...volumesSchemas,
    ...networkSchemas,
    ...selfServiceSchemas,
    ...operationsSchemas,
  ]);
}
