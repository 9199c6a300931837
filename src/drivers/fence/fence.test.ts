/**
 * The IPMI fence against a fake `ipmitool` (no BMC exists here): a script that records its
 * arguments and whether it was given the password, and answers as ipmitool does; and the
 * agent self-fence's arithmetic.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CloudError } from '../../kernel/errors.js';
import { AgentSelfFence } from './agent-self-fence.js';
import { IpmiFence } from './ipmi.js';
import type { FenceTarget } from './port.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-ipmi-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = join(dir, 'calls.log');
const state = join(dir, 'power');

/** a fake ipmitool: logs argv and IPMI_PASSWORD, keeps the chassis power in a file */
function fakeIpmitool(mode: 'ok' | 'unreachable' | 'stuck-on'): string {
  const path = join(dir, `ipmitool-${mode}`);
  writeFileSync(
    path,
    `#!/bin/sh
echo "$* | password=$IPMI_PASSWORD" >> ${log}
case "${mode}" in
  unreachable) echo "Error: Unable to establish IPMI v2 / RMCP+ session" >&2; exit 1;;
esac
case "$*" in
  *"chassis power off") [ "${mode}" = stuck-on ] || echo off > ${state}; echo "Chassis Power Control: Down/Off";;
  *"chassis power status") if [ "$(cat ${state} 2>/dev/null)" = off ]; then echo "Chassis Power is off"; else echo "Chassis Power is on"; fi;;
  *) echo "unexpected: $*" >&2; exit 2;;
esac
`,
  );
  chmodSync(path, 0o755);
  return path;
}

const target: FenceTarget = {
  uuid: '01900000-0000-7000-8000-000000000001',
  managementIp: '192.0.2.10',
  hypervisorType: 'kvm',
  ipmi: { address: '192.0.2.110', username: 'fence', password: 's3cret pass' },
  silentSince: new Date(),
};

test('ipmi: power off, then status until off; the password only in the environment', async () => {
  rmSync(log, { force: true });
  rmSync(state, { force: true });
  const outcome = await new IpmiFence({ command: fakeIpmitool('ok'), statusPauseMs: 10 }).fence(target);
  assert.deepEqual(outcome, {
    state: 'fenced',
    method: 'ipmi',
    detail: 'BMC 192.0.2.110: Chassis Power is off',
  });
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  assert.deepEqual(calls, [
    '-I lanplus -H 192.0.2.110 -U fence -E chassis power off | password=s3cret pass',
    '-I lanplus -H 192.0.2.110 -U fence -E chassis power status | password=s3cret pass',
  ]);
  for (const c of calls) assert.ok(!c.split(' | ')[0]!.includes('s3cret'), 'no password on the command line');
});

test('ipmi: an unreachable BMC fails the fence with its reason', async () => {
  rmSync(log, { force: true });
  await assert.rejects(
    new IpmiFence({ command: fakeIpmitool('unreachable') }).fence(target),
    (err: CloudError) => {
      assert.equal(err.code, 'HOST_FENCE_FAILED');
      assert.match(err.message, /Unable to establish IPMI v2/);
      assert.ok(!err.message.includes('s3cret'));
      return true;
    },
  );
  assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'nothing after the failed power off');
});

test('ipmi: a chassis that stays on is not a fence', async () => {
  rmSync(state, { force: true });
  await assert.rejects(
    new IpmiFence({ command: fakeIpmitool('stuck-on'), statusAttempts: 3, statusPauseMs: 5 }).fence(target),
    (err: CloudError) =>
      err.code === 'HOST_FENCE_FAILED' && /still says 'Chassis Power is on'/.test(err.message),
  );
});

test('ipmi: a host without credentials cannot be fenced by IPMI', async () => {
  const { ipmi: _, ...bare } = target;
  await assert.rejects(
    new IpmiFence().fence(bare),
    (err: CloudError) => err.code === 'HOST_FENCE_UNAVAILABLE',
  );
});

test('agent self-fence: pending until the agents’ timeout plus the margin has passed, then fenced', async () => {
  const since = new Date(1_000_000);
  let now = since.getTime() + 50_000;
  const fence = new AgentSelfFence(60, 15, () => now);
  const pending = await fence.fence({ ...target, silentSince: since });
  assert.equal(pending.state, 'pending');
  assert.equal(pending.state === 'pending' && pending.retryAfterMs, 25_000);
  now = since.getTime() + 75_000;
  assert.equal((await fence.fence({ ...target, silentSince: since })).state, 'fenced');
  await assert.rejects(
    new AgentSelfFence(0, 15).fence(target),
    (err: CloudError) => err.code === 'HOST_FENCE_UNAVAILABLE' && /hostSelfFenceSeconds/.test(err.message),
  );
});
