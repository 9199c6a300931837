import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Fifo, parallelismByKind, QueueSet } from './queues.js';

// Tasks are released by hand (deferreds), so the tests observe ordering and concurrency, never timing.

interface Gate {
  promise: Promise<void>;
  open(): void;
  fail(err: Error): void;
}

function gate(): Gate {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** Lets every queued microtask and promise continuation run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A task that records when it starts and finishes and waits for its gate. */
function tracker() {
  const started: string[] = [];
  const finished: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const gates = new Map<string, Gate>();
  return {
    started,
    finished,
    get running() {
      return running;
    },
    get maxRunning() {
      return maxRunning;
    },
    gate(id: string): Gate {
      let g = gates.get(id);
      if (!g) {
        g = gate();
        gates.set(id, g);
      }
      return g;
    },
    task(id: string) {
      return async () => {
        started.push(id);
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          await this.gate(id).promise;
          return id;
        } finally {
          running--;
          finished.push(id);
        }
      };
    },
  };
}

const queues = () => new QueueSet(parallelismByKind({ host: 10 }));

describe('QueueSet', () => {
  test('parallelismByKind reads the key prefix; unlisted kinds get 1', () => {
    const p = parallelismByKind({ host: 10, vm: 1 });
    assert.equal(p('host:123'), 10);
    assert.equal(p('vm:123'), 1);
    assert.equal(p('zone:123'), 1);
    assert.equal(p('nokind'), 1);
  });

  test('tasks on one key run one at a time, in arrival order', async () => {
    const q = queues();
    const t = tracker();
    const ids = ['1', '2', '3', '4', '5'];
    const results = ids.map((id) => q.run('vm:a', t.task(id)));
    await settle();
    assert.deepEqual(t.started, ['1']);
    // release them out of order: the queue still starts them in arrival order
    for (const id of ['5', '3', '4', '2']) t.gate(id).open();
    await settle();
    assert.deepEqual(t.started, ['1']);
    t.gate('1').open();
    assert.deepEqual(await Promise.all(results), ids);
    assert.deepEqual(t.started, ids);
    assert.deepEqual(t.finished, ids);
    assert.equal(t.maxRunning, 1);
  });

  test('a host key runs 10 tasks at once and no more', async () => {
    const q = queues();
    const t = tracker();
    const ids = Array.from({ length: 25 }, (_, i) => String(i));
    const results = ids.map((id) => q.run('host:h1', t.task(id)));
    await settle();
    assert.deepEqual(t.started, ids.slice(0, 10));
    assert.deepEqual(q.depth(), { keys: 1, waiting: 15, running: 10 });
    // each finished task lets exactly the next waiting one in
    t.gate('0').open();
    await settle();
    assert.deepEqual(t.started, ids.slice(0, 11));
    assert.equal(t.running, 10);
    for (const id of ids) t.gate(id).open();
    await Promise.all(results);
    assert.equal(t.maxRunning, 10);
    assert.deepEqual(t.started, ids, 'started in arrival order');
    assert.deepEqual(q.depth(), { keys: 0, waiting: 0, running: 0 });
  });

  test('different keys never wait for each other', async () => {
    const q = queues();
    const t = tracker();
    const a = q.run('vm:a', t.task('a1'));
    const a2 = q.run('vm:a', t.task('a2'));
    const b = q.run('vm:b', t.task('b1'));
    const z = q.run('zone:a', t.task('z1'));
    await settle();
    assert.deepEqual(t.started, ['a1', 'b1', 'z1']);
    // b finishes while a is still blocked
    t.gate('b1').open();
    assert.equal(await b, 'b1');
    t.gate('z1').open();
    assert.equal(await z, 'z1');
    assert.deepEqual(t.started, ['a1', 'b1', 'z1']);
    t.gate('a1').open();
    t.gate('a2').open();
    await Promise.all([a, a2]);
    assert.deepEqual(t.started, ['a1', 'b1', 'z1', 'a2']);
  });

  test('a failing task rejects its caller and releases its slot to the next task', async () => {
    const q = queues();
    const t = tracker();
    const first = q.run('vm:a', t.task('1'));
    const second = q.run('vm:a', t.task('2'));
    // a task that throws before returning a promise releases its slot as well
    const thrower = assert.rejects(
      q.run('vm:b', () => {
        throw new Error('synchronous');
      }),
      /synchronous/,
    );
    const after = q.run('vm:b', t.task('b'));
    await settle();
    t.gate('1').fail(new Error('task 1 failed'));
    await assert.rejects(first, /task 1 failed/);
    await thrower;
    await settle();
    assert.deepEqual(t.started, ['1', 'b', '2']);
    t.gate('2').open();
    t.gate('b').open();
    assert.equal(await second, '2');
    assert.equal(await after, 'b');
    assert.deepEqual(q.depth(), { keys: 0, waiting: 0, running: 0 });
  });

  test('depth counts keys, waiting and running tasks over all keys', async () => {
    const q = queues();
    const t = tracker();
    assert.deepEqual(q.depth(), { keys: 0, waiting: 0, running: 0 });
    const all = [
      q.run('vm:a', t.task('a1')),
      q.run('vm:a', t.task('a2')),
      q.run('vm:a', t.task('a3')),
      q.run('host:h', t.task('h1')),
      q.run('host:h', t.task('h2')),
      q.run('vm:b', t.task('b1')),
    ];
    await settle();
    assert.deepEqual(q.depth(), { keys: 3, waiting: 2, running: 4 });
    t.gate('a1').open();
    await settle();
    assert.deepEqual(q.depth(), { keys: 3, waiting: 1, running: 4 });
    for (const id of ['a2', 'a3', 'h1', 'h2', 'b1']) t.gate(id).open();
    await Promise.all(all);
    assert.deepEqual(q.depth(), { keys: 0, waiting: 0, running: 0 });
  });
});

test('Fifo: arrival order kept across its compaction, however it is interleaved', () => {
  const q = new Fifo<number>();
  const out: number[] = [];
  let next = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000; i++) q.push(next++);
    for (let i = 0; i < 2500; i++) out.push(q.shift()!);
  }
  assert.equal(q.length, next - out.length);
  for (let v = q.shift(); v !== undefined; v = q.shift()) out.push(v);
  assert.equal(q.length, 0);
  assert.deepEqual(
    out,
    Array.from({ length: next }, (_, i) => i),
  );
});
