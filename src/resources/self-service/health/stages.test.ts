import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextStage, STAGE_ORDER, stageSteps, stepPrefix, stepRequestId } from './stages.js';

test('the ladder: restart, then rebuild, then migrate, then nothing', () => {
  assert.deepEqual(STAGE_ORDER, ['restart', 'rebuild', 'migrate']);
  assert.equal(nextStage('restart'), 'rebuild');
  assert.equal(nextStage('rebuild'), 'migrate');
  assert.equal(nextStage('migrate'), undefined);
});

test('restart and rebuild stay on the host the VM broke on; migrate avoids it', () => {
  assert.deepEqual(
    stageSteps('restart', 'h1').map((s) => [s.op, s.params, s.onlyFrom]),
    [
      ['stop', { force: true }, ['Error']],
      ['start', { hostUuid: 'h1' }, undefined],
    ],
  );
  assert.deepEqual(
    stageSteps('rebuild', 'h1').map((s) => [s.op, s.params]),
    [
      ['rebuild', {}],
      ['start', { hostUuid: 'h1' }],
    ],
  );
  assert.deepEqual(
    stageSteps('migrate', 'h1').map((s) => [s.op, s.params]),
    [['start', { excludeHosts: ['h1'] }]],
  );
  // a VM that never had a host: nothing to stay on or avoid
  assert.deepEqual(stageSteps('migrate', null)[0]!.params, {});
  assert.deepEqual(stageSteps('restart', null)[1]!.params, {});
});

test('each step of each healing has its own request id', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const ids = new Set(
    (['restart', 'rebuild', 'migrate'] as const).flatMap((stage) =>
      [0, 1].map((step) => stepRequestId('vm', at, stage, step)),
    ),
  );
  assert.equal(ids.size, 6);
  assert.notEqual(stepRequestId('vm', at, 'restart', 0, 0), stepRequestId('vm', at, 'restart', 0, 1));
  assert.ok(stepRequestId('vm', at, 'restart', 1, 2).startsWith(`${stepPrefix('vm', at, 'restart', 1)}:`));
  assert.notEqual(stepRequestId('vm', at, 'restart', 0), stepRequestId('vm', new Date(1), 'restart', 0));
});
