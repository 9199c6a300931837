/** Rollback tables prove they cover every registered chain × step of their families. */
import assert from 'node:assert/strict';
import type { RunningNode } from '../../src/node.js';

/** Registered chains whose job kind starts with one of `prefixes` (e.g. `zone.`), with their step names. */
export function registeredSteps(node: RunningNode, prefixes: string[]): Map<string, string[]> {
  return new Map(
    [...node.services.engine.chainSteps()].filter(([kind]) => prefixes.some((p) => kind.startsWith(p))),
  );
}

/** Fails naming every registered `kind/step` without a row, and every row for nothing registered. */
export function assertTableCovers(
  registered: Map<string, string[]>,
  rows: Iterable<{ kind: string; step: string }>,
): void {
  const have = new Set([...rows].map((r) => `${r.kind}/${r.step}`));
  const missing = [...registered].flatMap(([kind, steps]) =>
    steps.map((s) => `${kind}/${s}`).filter((k) => !have.has(k)),
  );
  assert.deepEqual(missing, [], 'chains or steps without a rollback-table row');
  const stale = [...have].filter((k) => {
    const [kind, step] = k.split('/') as [string, string];
    return !registered.get(kind)?.includes(step);
  });
  assert.deepEqual(stale, [], 'rows for chains or steps that are not registered');
}
