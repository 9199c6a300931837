/**
 * Scheduler configuration: defaults and the one validating constructor. Why each default is what
 * it is lives in docs/scheduler.md.
 */
import { type FieldProblem, invalid } from '../kernel/errors.js';
import type { SchedulerConfig, SchedulerConfigInput, WeigherMultipliers } from './types.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export const DEFAULT_WEIGHTS: Readonly<WeigherMultipliers> = Object.freeze({
  memory: 1,
  cpu: 1,
  vmCount: 0.5,
  imageCache: 1,
  // Larger than all the others together (3.5), so a soft rule is broken only when no host keeps it.
  softAffinity: 5,
  softAntiAffinity: 5,
});

export const DEFAULT_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  cpuOvercommit: 10,
  memoryOvercommit: 1,
  reservedMemoryPerHost: GiB,
  maxVmsPerHost: 0,
  strategy: 'spread',
  weights: DEFAULT_WEIGHTS,
  topN: 3,
});

/** Defaults overlaid with `input`; every bad field is reported at once (Invalid, INVALID_SCHEDULER_CONFIG). */
export function resolveConfig(input: SchedulerConfigInput = {}): SchedulerConfig {
  const weights: WeigherMultipliers = { ...DEFAULT_WEIGHTS, ...input.weights };
  const cfg: SchedulerConfig = { ...DEFAULT_CONFIG, ...input, weights };
  const problems: FieldProblem[] = [];
  const positive = (field: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0) problems.push({ field, problem: 'must be a number > 0' });
  };
  const count = (field: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) problems.push({ field, problem: `must be an integer ≥ ${min}` });
  };
  positive('cpuOvercommit', cfg.cpuOvercommit);
  positive('memoryOvercommit', cfg.memoryOvercommit);
  count('reservedMemoryPerHost', cfg.reservedMemoryPerHost, 0);
  count('maxVmsPerHost', cfg.maxVmsPerHost, 0);
  count('topN', cfg.topN, 1);
  if (cfg.strategy !== 'spread' && cfg.strategy !== 'pack') {
    problems.push({ field: 'strategy', problem: "must be 'spread' or 'pack'" });
  }
  for (const [name, v] of Object.entries(weights)) {
    if (!(name in DEFAULT_WEIGHTS)) problems.push({ field: `weights.${name}`, problem: 'unknown weigher' });
    else if (!Number.isFinite(v))
      problems.push({ field: `weights.${name}`, problem: 'must be a finite number' });
  }
  if (problems.length > 0) throw invalid(problems, 'INVALID_SCHEDULER_CONFIG');
  return cfg;
}
