/**
 * Row types of migration 0012-pool-sizing-health: burst sizing of pools, healing of leased VMs,
 * and quota charges applied at COMMIT (pool hand-outs).
 */
import type { Generated } from 'kysely';
import type { WithDefault } from './columns.js';

/** The burst settings of a pool and the factor in force (adaptive sizing). */
export interface PoolSizingColumns {
  burstWindowSeconds: WithDefault<number>;
  /** null: the pool's warm target */
  burstThreshold: number | null;
  burstFactor: WithDefault<number>;
  burstMaxFactor: WithDefault<number>;
  sizeFactor: WithDefault<number>;
  sizeChangedAt: Date | null;
}

export type LeaseHealth = 'Healthy' | 'Healing' | 'Unhealable';

export interface LeaseHealthColumns {
  health: WithDefault<LeaseHealth>;
}

export interface PoolMissTable {
  poolUuid: string;
  at: WithDefault<Date>;
}

export type HealStage = 'restart' | 'rebuild' | 'migrate';

export interface VmHealTable {
  vmUuid: string;
  leaseUuid: string;
  stage: HealStage;
  step: WithDefault<number>;
  hostUuid: string | null;
  startedAt: WithDefault<Date>;
  updatedAt: WithDefault<Date>;
}

/** A charge applied (and deleted) by a deferred trigger when its transaction commits. */
export interface QuotaChargeTable {
  id: Generated<string>;
  accountUuid: string;
  usage: string;
  defaults: string;
}
