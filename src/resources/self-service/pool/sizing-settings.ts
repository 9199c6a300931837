/** A pool's burst settings at create: their defaults and the one rule across them. */
import { POOL_SIZING_DEFAULTS } from '../../../contract/pool-sizing.js';
import type { FieldProblem } from '../../../kernel/errors.js';

type Body = Record<string, unknown>;

export function sizingFields(body: Body): Body {
  return {
    burstWindowSeconds: body.burstWindowSeconds ?? POOL_SIZING_DEFAULTS.burstWindowSeconds,
    burstThreshold: body.burstThreshold ?? POOL_SIZING_DEFAULTS.burstThreshold,
    burstFactor: body.burstFactor ?? POOL_SIZING_DEFAULTS.burstFactor,
    burstMaxFactor:
      body.burstMaxFactor ?? Math.max(POOL_SIZING_DEFAULTS.burstMaxFactor, Number(body.burstFactor ?? 1)),
  };
}

export function sizingProblems(body: Body): FieldProblem[] {
  const f = sizingFields(body);
  return (f.burstMaxFactor as number) < (f.burstFactor as number)
    ? [{ field: 'burstMaxFactor', problem: `must not be below burstFactor (${f.burstFactor})` }]
    : [];
}
