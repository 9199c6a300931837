/**
 * StepHooks.retry (a lost database connection, issue 8): asked only where running again is safe —
 * a rollback (always idempotent) and a forward step of a 'resume' chain — never for a forward
 * step of a 'rollback' chain, which fails and is rolled back instead.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloudError } from '../kernel/errors.js';
import { context, flow, hooks, journal, recorder, rollbacks, runs } from './flow.fixture.js';
import { executeFlow, type StepHooks } from './flow.js';

const lost = () =>
  new CloudError('Unavailable', 'DATABASE_UNAVAILABLE', 'the database connection was lost', {
    retryable: true,
  });

/** fails the named action `times` times with a lost connection, then lets it run */
function flaky<T extends { steps: Array<{ name: string; run: unknown; rollback?: unknown }> }>(
  def: T,
  action: 'run' | 'rollback',
  step: string,
  times: number,
): T {
  let left = times;
  for (const s of def.steps) {
    if (s.name !== step) continue;
    const original = s[action] as (ctx: unknown) => Promise<void>;
    s[action] = async (ctx: unknown) => {
      await original(ctx);
      if (left-- > 0) throw lost();
    };
  }
  return def;
}

const retryLost: (asked: string[]) => StepHooks['retry'] = (asked) => async (err, attempt, action) => {
  asked.push(`${action}#${attempt}`);
  return err instanceof CloudError && err.code === 'DATABASE_UNAVAILABLE' && attempt <= 5;
};

describe('retrying after a lost connection', () => {
  test('a rollback that lost its connection runs again: the chain ends rolled back with no rollback failure', async () => {
    const rec = recorder();
    const asked: string[] = [];
    const def = flaky(flow(rec, { failRun: 'c' }), 'rollback', 'b', 2);
    const out = await executeFlow(def, context(), journal(), { ...hooks(rec), retry: retryLost(asked) });
    assert.equal(out.ok, false);
    assert.deepEqual(out.ok ? [] : out.rollbackFailures, []);
    assert.deepEqual(rollbacks(rec.calls), ['c', 'b', 'b', 'b', 'a']);
    assert.deepEqual(asked, ['rollback#1', 'rollback#2']);
  });

  test('a forward step of a resume chain runs again; of a rollback chain it fails and is rolled back', async () => {
    const rec = recorder();
    const asked: string[] = [];
    const resume = { ...flaky(flow(rec), 'run', 'b', 1), recovery: 'resume' as const };
    const ok = await executeFlow(resume, context(), journal(), { ...hooks(rec), retry: retryLost(asked) });
    assert.equal(ok.ok, true);
    assert.deepEqual(runs(rec.calls), ['a', 'b', 'b', 'c', 'd', 'e']);
    assert.deepEqual(asked, ['run#1']);

    const rec2 = recorder();
    const asked2: string[] = [];
    const rollback = flaky(flow(rec2), 'run', 'b', 1);
    const failed = await executeFlow(rollback, context(), journal(), {
      ...hooks(rec2),
      retry: retryLost(asked2),
    });
    assert.equal(failed.ok, false);
    assert.equal(
      (failed.ok ? undefined : (failed.failure as { code: string }))?.code,
      'DATABASE_UNAVAILABLE',
    );
    assert.deepEqual(asked2, [], 'not asked for a forward step of a rollback chain');
    assert.deepEqual(rollbacks(rec2.calls), ['b', 'a']);
  });

  test('the retry gives up when the hook says so: the failure is recorded as before', async () => {
    const rec = recorder();
    const def = flaky(flow(rec, { failRun: 'b' }), 'rollback', 'a', 100);
    const out = await executeFlow(def, context(), journal(), { ...hooks(rec), retry: retryLost([]) });
    assert.equal(out.ok, false);
    const failures = out.ok ? [] : (out.rollbackFailures as Array<{ step: string; code: string }>);
    assert.deepEqual(
      failures.map((f) => [f.step, f.code]),
      [['a', 'DATABASE_UNAVAILABLE']],
    );
  });
});
