import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveSize, nextFactor, type PoolSizing, wantedFactor } from './sizing.js';

const pool = (o: Partial<PoolSizing> = {}): PoolSizing => ({
  uuid: 'p',
  accountUuid: 'a',
  warmTarget: 4,
  cap: 6,
  burstWindowSeconds: 60,
  burstThreshold: null,
  burstFactor: 1.5,
  burstMaxFactor: 2,
  sizeFactor: 1,
  sizeChangedAt: null,
  ...o,
});
const T0 = new Date('2026-01-01T00:00:00Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);

test('the threshold defaults to the warm target; beyond it 1.5, beyond twice it 2', () => {
  assert.equal(wantedFactor(pool(), 4), 1);
  assert.equal(wantedFactor(pool(), 5), 1.5);
  assert.equal(wantedFactor(pool(), 8), 1.5);
  assert.equal(wantedFactor(pool(), 9), 2);
  assert.equal(wantedFactor(pool({ burstThreshold: 10 }), 11), 1.5);
  assert.equal(
    wantedFactor(pool({ warmTarget: 0 }), 2),
    1.5,
    'a warm target of 0 counts as a threshold of 1',
  );
});

test('a rise is at once, to the level demand asks for (a jump straight to 2 included)', () => {
  assert.deepEqual(nextFactor(pool(), 5, T0)?.factor, 1.5);
  assert.deepEqual(nextFactor(pool(), 9, T0)?.factor, 2);
  assert.deepEqual(nextFactor(pool({ sizeFactor: 1.5, sizeChangedAt: T0 }), 9, later(1))?.factor, 2);
  assert.match(
    nextFactor(pool(), 9, T0)!.reason,
    /9 requests in the last 60 s, more than twice the threshold 4/,
  );
  assert.equal(nextFactor(pool({ sizeFactor: 2, sizeChangedAt: T0 }), 20, later(1)), undefined);
});

test('it converges back one level at a time, each only after a calm window since the last change', () => {
  const hot = pool({ sizeFactor: 2, sizeChangedAt: T0 });
  assert.equal(nextFactor(hot, 0, later(59)), undefined, 'not within the window of the last change');
  const step1 = nextFactor(hot, 0, later(60));
  assert.equal(step1?.factor, 1.5);
  assert.match(step1!.reason, /demand has fallen/);
  assert.equal(nextFactor(pool({ sizeFactor: 1.5, sizeChangedAt: later(60) }), 0, later(119)), undefined);
  assert.equal(nextFactor(pool({ sizeFactor: 1.5, sizeChangedAt: later(60) }), 0, later(120))?.factor, 1);
  assert.equal(nextFactor(hot, 6, later(60))?.factor, 1.5, 'demand still over the threshold holds 1.5');
  assert.equal(nextFactor(pool({ sizeFactor: 1.5, sizeChangedAt: T0 }), 6, later(600)), undefined);
});

test('the effective cap and warm target: floor of the product, warm target never above the cap', () => {
  assert.deepEqual(effectiveSize({ cap: 6, warmTarget: 4, sizeFactor: 1.5 }), { cap: 9, warmTarget: 6 });
  assert.deepEqual(effectiveSize({ cap: 5, warmTarget: 5, sizeFactor: 1.5 }), { cap: 7, warmTarget: 7 });
  assert.deepEqual(effectiveSize({ cap: 6, warmTarget: 4, sizeFactor: 2 }), { cap: 12, warmTarget: 8 });
  assert.deepEqual(effectiveSize({ cap: 6, warmTarget: 4, sizeFactor: 1 }), { cap: 6, warmTarget: 4 });
});
