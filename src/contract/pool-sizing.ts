/**
 * Wire shapes of a pool's adaptive sizing (docs/self-service.md "Adaptive sizing") and a lease's
 * health, kept apart from self-service.ts so the pool and lease shapes only spread them in.
 */
import { Type } from 'typebox';
import { Nullable, Timestamp } from './common.js';

const Factor = (description: string) => Type.Number({ minimum: 1, maximum: 4, description });

/** Settings an admin sets at create and update (all optional; defaults in the descriptions). */
export const poolSizingSettings = {
  burstWindowSeconds: Type.Integer({
    minimum: 10,
    maximum: 24 * 3600,
    description: 'the recent window whose allocation requests are counted (default 300)',
    'x-unit': 'seconds',
  }),
  burstThreshold: Nullable(
    Type.Integer({
      minimum: 1,
      maximum: 100000,
      description:
        'requests in the window beyond which the pool grows (default null: its warm target); beyond twice it, the pool grows to burstMaxFactor',
    }),
  ),
  burstFactor: Factor('first growth: cap and warm target times this (default 1.5)'),
  burstMaxFactor: Factor('second growth, at twice the threshold (default 2)'),
};

export const POOL_SIZING_DEFAULTS = {
  burstWindowSeconds: 300,
  burstThreshold: null,
  burstFactor: 1.5,
  burstMaxFactor: 2,
};

/** What the pool shows of its sizing. */
export const poolSizingState = {
  ...poolSizingSettings,
  sizeFactor: Type.Number({ description: 'the factor in force: 1 when calm, burstFactor or burstMaxFactor' }),
  sizeChangedAt: Nullable(Timestamp),
  effectiveCap: Type.Integer({ description: 'cap × sizeFactor: the most VMs the pool holds now' }),
  effectiveWarmTarget: Type.Integer({ description: 'warmTarget × sizeFactor, at most effectiveCap' }),
};

export const LEASE_HEALTH = ['Healthy', 'Healing', 'Unhealable'] as const;
export const leaseHealth = Type.Enum(LEASE_HEALTH, {
  description:
    'Healing: the health scanner restarts, rebuilds or moves its VM; Unhealable: all three failed (the holder was told)',
});
