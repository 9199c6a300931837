/**
 * What the OpenStack façade is built on: the same kind services, engine, query registry and
 * sessions as the native API. The façade translates shapes; it never holds a model of its own
 * (one VM is one Nimbus VM whichever API created it).
 */
import type { FastifyInstance } from 'fastify';
import type { Db } from '../db/pool.js';
import type { Engine } from '../engine/engine.js';
import type { KindRegistry } from '../engine/query/schema.js';
import type { Sessions } from '../resources/identity/session/sessions.js';
import type { FlowDeps, KindService } from '../resources/service.js';

export interface OpenStackDeps {
  /** every kind's service, by kind (`vms`, `l3-networks`, …) */
  services: ReadonlyMap<string, KindService>;
  engine: Engine<FlowDeps>;
  registry: KindRegistry;
  db: Db;
  sessions: Sessions;
}

/** the façade's services and where they are mounted (the catalog lists these) */
export const OPENSTACK_PREFIX = {
  identity: '/identity',
  compute: '/compute',
  image: '/image',
  network: '/network',
  volume: '/volume',
} as const;

/** one OpenStack service: registers its routes in a scope already prefixed with its mount point */
export type OpenStackService = (scope: FastifyInstance, deps: OpenStackDeps) => Promise<void> | void;
