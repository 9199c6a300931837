import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SingleFlight } from './single-flight.js';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

test('one run at a time per key; requests during a run share one next run, which starts after it', async () => {
  const f = new SingleFlight();
  const starts: number[] = [];
  const gates = [gate(), gate()];
  let runs = 0;
  const fn = async () => {
    const n = runs++;
    starts.push(n);
    await gates[n]!.opened;
  };
  const first = f.run('r', fn);
  const waiters = [f.run('r', fn), f.run('r', fn), f.run('r', fn)];
  await Promise.resolve();
  assert.deepEqual(starts, [0], 'the second run waits for the first');
  gates[0]!.open();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(starts, [0, 1], 'one run for all three waiters');
  let settled = false;
  const all = Promise.all(waiters).then(() => {
    settled = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'the waiters wait for the run that started after their request');
  gates[1]!.open();
  await all;
  assert.equal(runs, 2);
  assert.equal(f.size, 0);
});

test('keys are independent, and a failed run fails its callers without blocking the next', async () => {
  const f = new SingleFlight();
  const order: string[] = [];
  await Promise.all([
    f.run('a', async () => {
      order.push('a');
    }),
    f.run('b', async () => {
      order.push('b');
    }),
  ]);
  assert.deepEqual(order.sort(), ['a', 'b']);
  await assert.rejects(
    f.run('a', async () => {
      throw new Error('router down');
    }),
    /router down/,
  );
  let ran = false;
  await f.run('a', async () => {
    ran = true;
  });
  assert.equal(ran, true);
});
