/**
 * What each resource family gives the API: its contract (wire shapes), its query schema, and
 * the operations it supports. Every mutating operation returns the job it submitted.
 */

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { KindContract } from '../contract/kinds.js';
import type { Db } from '../db/pool.js';
import type { BackupStorageDriverRegistry } from '../drivers/backup-storage.js';
import type { FenceDrivers } from '../drivers/fence/registry.js';
import type { DriverRegistry } from '../drivers/port.js';
import type { Simulator } from '../drivers/simulator/simulator.js';
import type { Engine } from '../engine/engine.js';
import type { EventBus } from '../engine/events.js';
import type { JobRow } from '../engine/jobs.js';
import type { KindRegistry, KindSchema } from '../engine/query/schema.js';
import type { Caller } from '../kernel/caller.js';
import type { Settings } from '../kernel/settings.js';
import type { HostNetworkSync } from './network/host-sync.js';

/** What flows get as `deps`. */
export interface FlowDeps {
  drivers: DriverRegistry;
  /** how a failed host is fenced before host HA restarts its VMs (drivers/fence/) */
  fences: FenceDrivers;
  /** backup storages (where images live), by storage type */
  backupStorages: BackupStorageDriverRegistry;
  simulator: Simulator;
  events: EventBus;
  log: Logger;
  settings: Settings;
  /** re-sends hosts' network configuration (bridges, flat DHCP, security groups) */
  network: HostNetworkSync;
  /** submits a virtual router's appliance VM create (wired by node.ts; virtual-router/appliance.ts) */
  createApplianceVm?: (input: ApplianceVmInput) => Promise<{ vmUuid: string; jobUuid: string }>;
  /** destroys and expunges a virtual router's appliance VM, waiting for both (virtual-router/appliance.ts) */
  removeApplianceVm?: (vmUuid: string) => Promise<void>;
  /** submits the start of a router's stopped appliance VM (virtual-router/appliance.ts) */
  startApplianceVm?: (vmUuid: string) => Promise<{ jobUuid: string }>;
}

export interface ApplianceVmInput {
  routerUuid: string;
  name: string;
  imageUuid: string;
  cpu: number;
  memory: number;
  zoneUuid: string;
  nics: Array<{ l3NetworkUuid: string; ip?: string; allowGateway?: boolean }>;
}

export interface ServiceContext {
  db: Db;
  engine: Engine<FlowDeps>;
  events: EventBus;
  registry: KindRegistry;
  /** what flows get, for work a service does outside jobs (periodic tasks) */
  deps: FlowDeps;
}

export type Operation<B = Record<string, unknown>> = (
  caller: Caller,
  uuid: string,
  body: B,
) => Promise<JobRow>;

export interface KindService {
  contract: KindContract;
  schema: KindSchema;
  create?(caller: Caller, body: Record<string, unknown>): Promise<JobRow>;
  update?: Operation;
  remove?(caller: Caller, uuid: string): Promise<JobRow>;
  actions?: Record<string, Operation>;
  /** overrides the generic `GET /v1/<kind>/{uuid}` (e.g. jobs long-poll with ?wait=true) */
  get?(caller: Caller, uuid: string, query: Record<string, unknown>): Promise<unknown>;
  /** the API shape of a row (default: the row's queryable fields as stored) */
  present?(row: Record<string, unknown>): unknown;
  /** extra routes or hooks on the HTTP server, beyond the generic ones of its kind */
  routes?(app: FastifyInstance): void;
  /** starts the kind's periodic work (reconcilers, reapers) once the node serves */
  start?(): void;
  /**
   * Loads what its first requests would otherwise load in their own time (caches, snapshots);
   * the node awaits it before it reports ready (readiness `warming`).
   */
  warm?(): Promise<void>;
  /** stops it, waiting for a pass in flight */
  stop?(): Promise<void>;
}
