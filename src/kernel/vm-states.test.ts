import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canRun, isTransitional, refusal, TRANSITIONS, VM_STATES, type VmOperation } from './vm-states.js';

const OPS = Object.keys(TRANSITIONS) as VmOperation[];

test('every operation × every state: allowed exactly in its `from` states, never with a task in flight', () => {
  for (const op of OPS) {
    for (const state of VM_STATES) {
      const legal = TRANSITIONS[op].from.includes(state);
      assert.equal(canRun(op, state, null), legal, `${op} from ${state}`);
      assert.equal(canRun(op, state, 'start'), false, `${op} from ${state} with a task in flight`);
      if (!legal) {
        const err = refusal('vm-1', op, state, null);
        assert.equal(err.code, 'VM_INVALID_STATE');
        assert.equal(err.reason, 'Conflict');
        assert.match(err.message, new RegExp(`it is ${state}`), 'the refusal names the current state');
      }
    }
  }
});

test('a busy VM is refused with VM_BUSY naming the task', () => {
  const err = refusal('vm-1', 'stop', 'Starting', 'start');
  assert.equal(err.code, 'VM_BUSY');
  assert.match(err.message, /busy with 'start'/);
});

test('operations never start from a transitional state and never end in one', () => {
  for (const op of OPS) {
    const t = TRANSITIONS[op];
    for (const s of t.from) assert.equal(isTransitional(s), false, `${op} from ${s}`);
    if (t.to) assert.equal(isTransitional(t.to), false, `${op} ends in ${t.to}`);
    if (t.during) assert.equal(isTransitional(t.during), true, `${op} runs as ${t.during}`);
  }
});

test('the lifecycle edges users expect', () => {
  assert.deepEqual(TRANSITIONS.start, { from: ['Stopped'], during: 'Starting', to: 'Running' });
  assert.equal(TRANSITIONS.destroy.to, 'Destroyed');
  assert.deepEqual(TRANSITIONS.recover.from, ['Destroyed']);
  assert.deepEqual(TRANSITIONS.expunge.from, ['Destroyed']);
  assert.deepEqual(TRANSITIONS['change-offering'].from, ['Stopped']);
  assert.deepEqual(TRANSITIONS.migrate.from, ['Running']);
});
