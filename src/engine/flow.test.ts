import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  boom,
  context,
  flow,
  hooks,
  journal,
  NAMES,
  type Plan,
  recorder,
  rollbacks,
  runs,
} from './flow.fixture.js';
import { executeFlow, type FlowDef } from './flow.js';

describe('executeFlow: a failure at each step rolls back that step and every earlier one, in reverse', () => {
  // one row per (step index × way of failing): the rollback table of a 5-step chain
  const table = NAMES.flatMap((name, i) => [
    {
      name,
      i,
      how: 'run throws' as const,
      plan: { failRun: name } satisfies Plan,
      code: `RUN_${name.toUpperCase()}`,
    },
    {
      name,
      i,
      how: 'fault point' as const,
      plan: { faultAt: `step:test.chain/${name}` } satisfies Plan,
      code: 'INJECTED_FAULT',
    },
  ]);
  for (const row of table) {
    test(`step ${row.i} (${row.name}), ${row.how}`, async () => {
      const rec = recorder();
      const j = journal();
      const out = await executeFlow(flow(rec, row.plan), context(), j, hooks(rec, row.plan));
      assert.equal(out.ok, false);
      if (out.ok) return;
      assert.equal((out.failure as { code: string }).code, row.code);
      assert.deepEqual(out.rollbackFailures, []);
      // earlier steps ran, the failing one ran only if its own action threw, no later one ran
      const expectedRuns = NAMES.slice(0, row.how === 'run throws' ? row.i + 1 : row.i);
      assert.deepEqual(runs(rec.calls), expectedRuns);
      // the in-flight step is rolled back too (its rollback tolerates a run that never happened)
      assert.deepEqual(rollbacks(rec.calls), NAMES.slice(0, row.i + 1).reverse());
      // every run precedes every rollback
      const firstRollback = rec.calls.findIndex((c) => c.startsWith('rollback:'));
      assert.ok(rec.calls.slice(firstRollback).every((c) => c.startsWith('rollback:')));
      assert.equal(j.phase, 'rollback');
      assert.deepEqual(j.done, []);
      // what a client shows as rolled back: every step undone, in the order it was undone
      assert.deepEqual(j.rolledBack, NAMES.slice(0, row.i + 1).reverse());
      assert.equal(j.current, null);
      assert.deepEqual((j.failure as { code: string }).code, row.code);
      // the rollbacks undid what the runs journaled
      assert.deepEqual(j.ctx, {});
    });
  }
});

describe('executeFlow', () => {
  test('all steps succeed: the result, a complete journal, no rollback', async () => {
    const rec = recorder();
    const j = journal();
    let rolledBack = 0;
    const out = await executeFlow(flow(rec), context(), j, { ...hooks(rec), onRollback: () => rolledBack++ });
    assert.deepEqual(out, {
      ok: true,
      result: {
        data: { a: 'made-a', b: 'made-b', c: 'made-c', d: 'made-d', e: 'made-e' },
        n: 7,
      },
    });
    assert.deepEqual(
      rec.calls,
      NAMES.map((n) => `run:${n}`),
    );
    assert.deepEqual(j, {
      phase: 'forward',
      done: NAMES,
      current: null,
      ctx: { a: 'made-a', b: 'made-b', c: 'made-c', d: 'made-d', e: 'made-e' },
    });
    assert.equal(rolledBack, 0);
  });

  test('fault points are checked with their exact names, before each forward action and each rollback', async () => {
    const rec = recorder();
    await executeFlow(flow(rec), context(), journal(), hooks(rec));
    assert.deepEqual(
      rec.points,
      NAMES.map((n) => `step:test.chain/${n}`),
    );

    const failing = recorder();
    const plan: Plan = { failRun: 'c', noRollback: ['b'] };
    await executeFlow(flow(failing, plan), context(), journal(), hooks(failing, plan));
    assert.deepEqual(failing.points, [
      'step:test.chain/a',
      'step:test.chain/b',
      'step:test.chain/c',
      'rollback:test.chain/c',
      // b has no rollback: no fault point is checked for it
      'rollback:test.chain/a',
    ]);
    assert.deepEqual(rollbacks(failing.calls), ['c', 'a']);
  });

  test('a fault point is checked before the action: a fault at a step means its run never starts', async () => {
    const rec = recorder();
    const plan: Plan = { faultAt: 'step:test.chain/b' };
    await executeFlow(flow(rec, plan), context(), journal(), hooks(rec, plan));
    assert.deepEqual(rec.calls, ['run:a', 'rollback:b', 'rollback:a']);
  });

  test('save is called with the journal at every transition (success)', async () => {
    const rec = recorder();
    await executeFlow(flow(rec, {}, ['a', 'b', 'c']), context(), journal(), hooks(rec));
    assert.deepEqual(
      rec.saves.map((s) => [s.phase, s.current, s.done]),
      [
        ['forward', 'a', []],
        ['forward', 'b', ['a']],
        ['forward', 'c', ['a', 'b']],
        ['forward', null, ['a', 'b', 'c']],
      ],
    );
    // data handed on by a step is journaled before the next one starts
    assert.deepEqual(rec.saves[1]!.ctx, { a: 'made-a' });
  });

  test('save is called with the journal at every transition (failure and rollback)', async () => {
    const rec = recorder();
    const plan: Plan = { failRun: 'c' };
    await executeFlow(flow(rec, plan, ['a', 'b', 'c', 'd']), context(), journal(), hooks(rec, plan));
    assert.deepEqual(
      rec.saves.map((s) => [s.phase, s.current, s.done]),
      [
        ['forward', 'a', []],
        ['forward', 'b', ['a']],
        ['forward', 'c', ['a', 'b']],
        // the failure is journaled with the step in flight before any rollback
        ['rollback', 'c', ['a', 'b']],
        // the step in flight joins the steps to undo in the journal (a crash now still names it)
        ['rollback', 'c', ['a', 'b', 'c']],
        ['rollback', 'b', ['a', 'b']],
        ['rollback', 'a', ['a']],
        ['rollback', null, []],
      ],
    );
    assert.equal((rec.saves[3]!.failure as { code: string }).code, 'RUN_C');
  });

  test('rollback failures are collected in order and the remaining rollbacks still run', async () => {
    const rec = recorder();
    const plan: Plan = { failRun: 'e', failRollback: ['d', 'b'] };
    let failureSeen: unknown;
    const def = {
      ...flow(rec, plan),
      afterRollback: async (_: unknown, f: unknown) => {
        failureSeen = f;
      },
    };
    const j = journal();
    const out = await executeFlow(def, context(), j, hooks(rec, plan));
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.deepEqual(rollbacks(rec.calls), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(
      out.rollbackFailures.map((f) => [(f as { step: string }).step, (f as { code: string }).code]),
      [
        ['d', 'UNDO_D'],
        ['b', 'UNDO_B'],
      ],
    );
    assert.equal((out.failure as { code: string }).code, 'RUN_E');
    assert.deepEqual(j.rollbackFailures, out.rollbackFailures);
    assert.deepEqual(j.done, [], 'a failed rollback is not retried forever: the step leaves the journal');
    assert.equal((failureSeen as { code: string }).code, 'RUN_E', 'afterRollback gets the original failure');
  });

  test('a rollback fault point counts as a rollback failure; the other rollbacks still happen', async () => {
    const rec = recorder();
    const plan: Plan = { failRun: 'd' };
    const h = hooks(rec, plan);
    const out = await executeFlow(flow(rec, plan), context(), journal(), {
      ...h,
      checkFault: async (p) => {
        await h.checkFault(p);
        if (p === 'rollback:test.chain/b') throw boom('INJECTED_FAULT');
      },
    });
    assert.equal(out.ok, false);
    if (out.ok) return;
    // b's rollback never ran (the fault is checked before it), a's and the later ones did
    assert.deepEqual(rollbacks(rec.calls), ['d', 'c', 'a']);
    assert.deepEqual(out.rollbackFailures, [
      { step: 'b', code: 'INJECTED_FAULT', reason: 'Internal', message: 'INJECTED_FAULT happened' },
    ]);
  });

  test('an afterRollback failure is reported as a rollback failure', async () => {
    const rec = recorder();
    const plan: Plan = { failRun: 'a' };
    const def = {
      ...flow(rec, plan),
      afterRollback: async () => {
        throw boom('AFTER');
      },
    };
    const out = await executeFlow(def, context(), journal(), hooks(rec, plan));
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.deepEqual(
      out.rollbackFailures.map((f) => (f as { step: string }).step),
      ['afterRollback'],
    );
  });

  test('a failing result() rolls back every step', async () => {
    const rec = recorder();
    const def = {
      ...flow(rec),
      result: async () => {
        throw boom('RESULT');
      },
    };
    const out = await executeFlow(def, context(), journal(), hooks(rec));
    assert.equal(out.ok, false);
    assert.deepEqual(rollbacks(rec.calls), [...NAMES].reverse());
  });

  test('resuming a journal skips the steps already done and keeps their data', async () => {
    const rec = recorder();
    const j = journal({ done: ['a', 'b'], ctx: { a: 'from-before', b: 'from-before' } });
    const out = await executeFlow(flow(rec), context(), j, hooks(rec));
    assert.equal(out.ok, true);
    assert.deepEqual(rec.calls, ['run:c', 'run:d', 'run:e']);
    assert.deepEqual(rec.points, ['step:test.chain/c', 'step:test.chain/d', 'step:test.chain/e']);
    assert.deepEqual(j.done, NAMES);
    assert.equal(j.ctx.a, 'from-before');
  });

  test('a resumed chain that fails rolls back the steps done before the resume too', async () => {
    const rec = recorder();
    const plan: Plan = { failRun: 'd' };
    const j = journal({ done: ['a', 'b'] });
    await executeFlow(flow(rec, plan), context(), j, hooks(rec, plan));
    assert.deepEqual(runs(rec.calls), ['c', 'd']);
    assert.deepEqual(rollbacks(rec.calls), ['d', 'c', 'b', 'a']);
  });

  test('a step in flight at a crash (journal current set, phase forward) runs again on resume', async () => {
    const rec = recorder();
    const j = journal({ done: ['a'], current: 'b' });
    const out = await executeFlow(flow(rec), context(), j, hooks(rec));
    assert.equal(out.ok, true);
    assert.deepEqual(rec.calls, ['run:b', 'run:c', 'run:d', 'run:e']);
  });

  test("a journal in phase 'rollback' continues the rollback from the step in flight; nothing runs forward", async () => {
    const rec = recorder();
    const failure = { code: 'JOB_INTERRUPTED', reason: 'Unavailable', message: 'node died' };
    const earlier = { step: 'd', code: 'UNDO_D', reason: 'Internal', message: 'before the crash' };
    const j = journal({
      phase: 'rollback',
      done: ['a', 'b'],
      current: 'c',
      ctx: { a: 'made-a', b: 'made-b', c: 'made-c' },
      failure,
      rollbackFailures: [earlier],
    });
    const out = await executeFlow(flow(rec), context(), j, hooks(rec));
    assert.deepEqual(rec.calls, ['rollback:c', 'rollback:b', 'rollback:a']);
    assert.deepEqual(rec.points, ['rollback:test.chain/c', 'rollback:test.chain/b', 'rollback:test.chain/a']);
    assert.deepEqual(out, { ok: false, failure, rollbackFailures: [earlier] });
    assert.deepEqual(j.ctx, {});
    assert.deepEqual(
      rec.saves.map((s) => s.current),
      ['c', 'b', 'a', null],
    );
  });

  test("a journal in phase 'rollback' with nothing in flight rolls back the done steps", async () => {
    const rec = recorder();
    const j = journal({ phase: 'rollback', done: ['a', 'b', 'c'], failure: { code: 'X' } });
    const out = await executeFlow(flow(rec), context(), j, hooks(rec));
    assert.equal(out.ok, false);
    assert.deepEqual(rec.calls, ['rollback:c', 'rollback:b', 'rollback:a']);
  });

  test('onRollback is told the flow kind once when a chain starts rolling back', async () => {
    const rec = recorder();
    const kinds: string[] = [];
    const plan: Plan = { failRun: 'b' };
    await executeFlow(flow(rec, plan), context(), journal(), {
      ...hooks(rec, plan),
      onRollback: (k) => kinds.push(k),
    });
    assert.deepEqual(kinds, ['test.chain']);
  });

  test('a non-CloudError failure is journaled as an Internal error body without a stack', async () => {
    const rec = recorder();
    const def: FlowDef<{ n: number }, null> = {
      kind: 'test.chain',
      recovery: 'resume',
      steps: [
        {
          name: 'x',
          async run() {
            throw new TypeError('oops');
          },
        },
      ],
    };
    const out = await executeFlow(def, context(), journal(), hooks(rec));
    assert.deepEqual(out, {
      ok: false,
      failure: { code: 'INTERNAL_ERROR', reason: 'Internal', message: 'oops' },
      rollbackFailures: [],
    });
  });
});
