/**
 * Every API kind as the CLI and docs see it: path, CLI noun, request bodies, actions.
 * The server validates with the same schemas, and the CLI derives its flags from them,
 * so a field added here appears in the API, the OpenAPI document and `nimbus <kind> create --help`.
 * This file is only the registry: each family's kinds live in its own file (foundation.ts,
 * compute.ts, storage.ts, volumes.ts, network.ts), the KindContract shape in kind-contract.ts.
 */
import type { TSchema } from 'typebox';
import { managementNodes } from './cluster.js';
import { COMPUTE_KINDS } from './compute.js';
import { accounts, clusters, events, hosts, jobs, tags, users, zones } from './foundation.js';
import type { KindContract } from './kind-contract.js';
import { NETWORK_KINDS } from './network.js';
import { SELF_SERVICE_KINDS } from './self-service.js';
import { STORAGE_KINDS } from './storage.js';
import { VOLUMES_KINDS } from './volumes.js';
import { WEBHOOK_KINDS } from './webhooks.js';

export type { KindContract };

export const KINDS: KindContract[] = [
  zones,
  clusters,
  hosts,
  accounts,
  users,
  jobs,
  events,
  tags,
  managementNodes,
  ...STORAGE_KINDS,
  ...COMPUTE_KINDS,
  ...VOLUMES_KINDS,
  ...NETWORK_KINDS,
  ...SELF_SERVICE_KINDS,
  ...WEBHOOK_KINDS,
];

export function kindBySingular(singular: string): KindContract | undefined {
  return KINDS.find((k) => k.singular === singular);
}

export type { TSchema };
