/**
 * PeriodicTask's share bound, on mocked timers and clock (no real time involved): a pass that
 * takes 3 ticks' worth of time under maxShare 0.5 keeps the next pass away for 6 ticks from its
 * start; without a bound the next pass comes at the first tick after it ended.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { PeriodicTask } from './periodic.js';

beforeEach(() => mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

/** a pass that lasts `ticks` × 100 ms of the mocked clock, recording when it began */
function slowPass(started: number[], ticks: number) {
  let end: (() => void) | undefined;
  return {
    pass: () => {
      started.push(Date.now());
      return new Promise<void>((r) => {
        end = r;
      });
    },
    async finishAfter(): Promise<void> {
      mock.timers.tick(ticks * 100);
      end?.();
      await new Promise((r) => setImmediate(r));
    },
  };
}

for (const [share, expected] of [
  [1, [100, 500]],
  [0.5, [100, 700]],
] as const) {
  test(`maxShare ${share}: passes begin at ${expected.join(', ')} ms`, async () => {
    const started: number[] = [];
    const p = slowPass(started, 3);
    const task = new PeriodicTask(100, p.pass, () => {}, share).start();
    mock.timers.tick(100); // first pass begins at 100
    await p.finishAfter(); // … and ends at 400
    for (let i = 0; i < 4 && started.length < 2; i++) mock.timers.tick(100);
    assert.deepEqual(started, expected);
    await p.finishAfter();
    await task.stop();
  });
}
