import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachedRow, forgetRow } from './admission-cache.js';

const key = () => `k-${Math.random()}`;

test('concurrent misses share one load; a usable row is then served without loading', async () => {
  const k = key();
  let loads = 0;
  const load = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 5));
    return { state: 'Ready' };
  };
  const rows = await Promise.all(
    Array.from({ length: 50 }, () => cachedRow(k, load, (r) => r.state === 'Ready')),
  );
  assert.equal(loads, 1);
  assert.ok(rows.every((r) => r?.state === 'Ready'));
  await cachedRow(k, load, () => true);
  assert.equal(loads, 1);
});

test('refusals are never cached: a row that is not usable, or missing, is read again', async () => {
  const k = key();
  let loads = 0;
  const disabled = async () => {
    loads++;
    return { state: 'Disabled' };
  };
  await cachedRow(k, disabled, (r) => r.state === 'Enabled');
  await cachedRow(k, disabled, (r) => r.state === 'Enabled');
  assert.equal(loads, 2);
  const missing = async () => {
    loads++;
    return undefined;
  };
  await cachedRow(key(), missing, () => true);
  assert.equal(loads, 3);
});

test('forgetRow drops a cached row, and a load in flight when it is called stores nothing', async () => {
  const k = key();
  let version = 1;
  let loads = 0;
  const load = async () => {
    loads++;
    const seen = version;
    await new Promise((r) => setTimeout(r, 10));
    return { version: seen };
  };
  assert.equal((await cachedRow(k, load, () => true))?.version, 1);
  version = 2;
  forgetRow(k);
  const inFlight = cachedRow(k, load, () => true);
  forgetRow(k); // a change announced while the row is being read
  assert.equal((await inFlight)?.version, 2);
  await cachedRow(k, load, () => true);
  assert.equal(loads, 3, 'the read made during the change was not kept');
});
