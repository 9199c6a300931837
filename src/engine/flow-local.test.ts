import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  context,
  flow,
  hooks,
  journal,
  type Plan,
  type Recorder,
  recorder,
  rollbacks,
} from './flow.fixture.js';
import { executeFlow } from './flow.js';

describe('local steps: journaled with the next save, and rolled back after a crash even if unrecorded', () => {
  // b and c change only "this database": no save before them; d is saved before it starts
  const localFlow = (rec: Recorder, plan: Plan = {}) => {
    const def = flow(rec, plan);
    def.steps = def.steps.map((s) => (s.name === 'b' || s.name === 'c' ? { ...s, local: true } : s));
    return def;
  };

  test('no save before a local step; the next save names it done, and the step in flight is never local', async () => {
    const rec = recorder();
    const out = await executeFlow(localFlow(rec), context(), journal(), hooks(rec));
    assert.equal(out.ok, true);
    assert.deepEqual(
      rec.saves.map((s) => s.current),
      ['a', 'd', 'e', null],
    );
    assert.deepEqual(rec.saves[1]!.done, ['a', 'b', 'c'], 'b and c go out with the save before d');
  });

  test('savesFinalJournal: the chain leaves the final save to its caller', async () => {
    const rec = recorder();
    const out = await executeFlow(localFlow(rec), context(), journal(), {
      ...hooks(rec),
      savesFinalJournal: true,
    });
    assert.equal(out.ok, true);
    assert.deepEqual(
      rec.saves.map((s) => s.current),
      ['a', 'd', 'e'],
    );
  });

  test('a recovered forward journal (last save: a in flight) rolls back the local steps after it too', async () => {
    const rec = recorder();
    const crashed = journal({
      phase: 'rollback',
      done: [],
      current: 'a',
      failure: { code: 'JOB_INTERRUPTED' },
    });
    const out = await executeFlow(localFlow(rec), context(), crashed, { ...hooks(rec), recovered: true });
    assert.equal(out.ok, false);
    assert.deepEqual(rollbacks(rec.calls), ['c', 'b', 'a'], 'b and c may have run unrecorded');
  });

  test('a node that dies again during that rollback leaves a journal naming the unrecorded local steps', async () => {
    // first recovery: the node dies right after its first rollback save (about to undo c)
    const first = recorder();
    const crashed = journal({
      phase: 'rollback',
      done: [],
      current: 'a',
      failure: { code: 'JOB_INTERRUPTED' },
    });
    const killed = new Error('node killed');
    const base = hooks(first);
    await assert.rejects(
      executeFlow(localFlow(first), context(), crashed, {
        ...base,
        recovered: true,
        async save(j, progress) {
          await base.save(j, progress);
          throw killed;
        },
      }),
      killed,
    );
    assert.deepEqual(rollbacks(first.calls), [], 'nothing undone before the node died');
    // what the database holds: the last save
    const saved = first.saves.at(-1)!;
    assert.deepEqual(saved.done, ['a', 'b', 'c'], 'the first rollback save names every step to undo');
    // second recovery reads a rollback journal (not "recovered"): it still undoes c, b and a
    const second = recorder();
    const out = await executeFlow(localFlow(second), context(), structuredClone(saved), hooks(second));
    assert.equal(out.ok, false);
    assert.deepEqual(rollbacks(second.calls), ['c', 'b', 'a']);
  });

  test('not recovered (a failure in this process): only what the journal names is rolled back', async () => {
    const rec = recorder();
    const out = await executeFlow(localFlow(rec, { failRun: 'b' }), context(), journal(), hooks(rec));
    assert.equal(out.ok, false);
    assert.deepEqual(rollbacks(rec.calls), ['b', 'a']);
  });

  test('a recovered journal whose next step is not local adds nothing', async () => {
    const rec = recorder();
    const crashed = journal({ phase: 'rollback', done: ['a', 'b', 'c'], current: 'd' });
    await executeFlow(localFlow(rec), context(), crashed, { ...hooks(rec), recovered: true });
    assert.deepEqual(rollbacks(rec.calls), ['d', 'c', 'b', 'a']);
  });
});
