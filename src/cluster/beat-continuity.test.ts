/** BeatContinuity: when a node may fence the silent (issue 10: a database failover fences nobody). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BeatContinuity } from './beat-continuity.js';

const DEAD_AFTER = 10_000;

test('a node judges silence only after beating for dead-after without a break', () => {
  const c = new BeatContinuity(DEAD_AFTER);
  assert.equal(c.mayJudgeSilence(0), false, 'not before its first beat');
  for (let t = 0; t < DEAD_AFTER; t += 2000) {
    c.succeeded(t);
    assert.equal(c.mayJudgeSilence(t), false, `not yet at ${t} ms`);
  }
  c.succeeded(DEAD_AFTER);
  assert.equal(c.mayJudgeSilence(DEAD_AFTER), true);
});

test('a failed beat (the database away) starts the wait again from the next success', () => {
  const c = new BeatContinuity(DEAD_AFTER);
  for (let t = 0; t <= 20_000; t += 2000) c.succeeded(t);
  assert.equal(c.mayJudgeSilence(20_000), true);
  c.failed(); // a failover: every heartbeat fails for a while
  assert.equal(c.mayJudgeSilence(22_000), false);
  c.succeeded(40_000); // back after 20 s: the others' beats are 20 s old too
  assert.equal(c.mayJudgeSilence(40_000), false, 'the others get dead-after to beat again');
  for (let t = 42_000; t < 50_000; t += 2000) {
    c.succeeded(t);
    assert.equal(c.mayJudgeSilence(t), false);
  }
  c.succeeded(50_000);
  assert.equal(c.mayJudgeSilence(50_000), true);
});

test('a long gap between successes (frozen, a hung beat) is a break; so is no beat lately', () => {
  const c = new BeatContinuity(DEAD_AFTER);
  for (let t = 0; t <= 20_000; t += 2000) c.succeeded(t);
  assert.equal(c.mayJudgeSilence(20_000 + DEAD_AFTER / 2), true, 'a gap up to half of dead-after is fine');
  assert.equal(c.mayJudgeSilence(20_000 + DEAD_AFTER / 2 + 1), false, 'no beat for too long: no judging');
  c.succeeded(60_000); // SIGCONT after a SIGSTOP: no failure was seen, but 40 s passed
  assert.equal(c.mayJudgeSilence(60_000), false);
  c.succeeded(64_000);
  c.succeeded(68_000);
  c.succeeded(70_000);
  assert.equal(c.mayJudgeSilence(70_000), true);
});
