import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloudError } from '../kernel/errors.js';
import { LoginThrottle } from './login-throttle.js';

const limits = { perName: 3, perSource: 5, windowMs: 60_000 };

function refusal(fn: () => void): CloudError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof CloudError);
    return err;
  }
}

test('a name is refused after perName failures until the oldest leaves the window', () => {
  let now = 1_000_000;
  const t = new LoginThrottle(limits, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(
      refusal(() => t.check('acme', 'ip1')),
      undefined,
    );
    t.failed('acme', 'ip1');
    now += 10_000;
  }
  const err = refusal(() => t.check('acme', 'ip2'));
  assert.equal(err?.code, 'LOGIN_THROTTLED');
  assert.equal(err?.status, 429);
  // failures at 0 s, 10 s, 20 s; now 30 s: the first leaves the window at 60 s
  assert.equal(err?.details?.retryAfterSeconds, 30);
  now += 30_000;
  assert.equal(
    refusal(() => t.check('acme', 'ip2')),
    undefined,
  );
});

test('a source is refused after perSource failures over any names', () => {
  const now = 5_000;
  const t = new LoginThrottle(limits, () => now);
  for (let i = 0; i < 5; i++) t.failed(`name-${i}`, 'ip1');
  assert.equal(refusal(() => t.check('fresh', 'ip1'))?.code, 'LOGIN_THROTTLED');
  assert.equal(
    refusal(() => t.check('fresh', 'ip2')),
    undefined,
  );
});

test('a success clears the name, not the source', () => {
  const t = new LoginThrottle(limits, () => 0);
  for (let i = 0; i < 3; i++) t.failed('acme', 'ip1');
  t.succeeded('acme');
  assert.equal(
    refusal(() => t.check('acme', 'ip9')),
    undefined,
  );
  t.failed('acme', 'ip1');
  t.failed('acme', 'ip1');
  assert.equal(refusal(() => t.check('other', 'ip1'))?.code, 'LOGIN_THROTTLED', 'ip1 has 5 failures');
});
