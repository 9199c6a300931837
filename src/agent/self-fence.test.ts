/**
 * Agent self-fencing with a fake clock, a lease that can be made to fail or hang, and guests
 * that record their kill: no kill while either contact or lease holds; a kill once both are lost
 * for the configured time; none again until contact returns; a failed kill is tried again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileLease, killThroughHandlers, SelfFence } from './self-fence.js';

const quiet = { info() {}, warn() {}, error() {} };

function rig(o: { lease?: boolean } = {}) {
  let now = 1_000_000;
  let leaseMode: 'ok' | 'fail' | 'hang' = 'ok';
  let kills = 0;
  let killFails = false;
  const fence = new SelfFence({
    afterMs: 30_000,
    checkEveryMs: 20,
    ...(o.lease === false
      ? {}
      : {
          lease: () =>
            leaseMode === 'ok'
              ? Promise.resolve()
              : leaseMode === 'fail'
                ? Promise.reject(new Error('EIO'))
                : new Promise<void>(() => {}),
        }),
    killGuests: async () => {
      if (killFails) throw new Error('qemu will not die');
      kills++;
      return 2;
    },
    log: quiet,
    now: () => now,
  });
  return {
    fence,
    advance: (ms: number) => {
      now += ms;
    },
    setLease: (m: 'ok' | 'fail' | 'hang') => {
      leaseMode = m;
    },
    setKillFails: (v: boolean) => {
      killFails = v;
    },
    kills: () => kills,
  };
}

test('contact lost but the storage lease renewed: the guests live', async () => {
  const r = rig();
  r.advance(120_000);
  await r.fence.check();
  assert.equal(r.kills(), 0);
});

test('lease lost but the management nodes still call: the guests live', async () => {
  const r = rig();
  r.setLease('fail');
  for (let i = 0; i < 4; i++) {
    r.advance(20_000);
    r.fence.contact();
    await r.fence.check();
  }
  assert.equal(r.kills(), 0);
});

test('both lost for the configured time: the guests are killed, once, until contact returns', async () => {
  const r = rig();
  await r.fence.check(); // lease renewed at t0
  r.setLease('hang'); // a hung NFS write counts as lost after the check interval
  r.advance(29_000);
  await r.fence.check();
  assert.equal(r.kills(), 0, 'not before the time');
  r.advance(2_000);
  await r.fence.check();
  assert.equal(r.kills(), 1);
  assert.ok(r.fence.isFenced);
  r.advance(60_000);
  await r.fence.check();
  assert.equal(r.kills(), 1, 'not again while still cut off');
  r.fence.contact();
  assert.ok(!r.fence.isFenced, 'armed again');
  r.advance(31_000);
  await r.fence.check();
  assert.equal(r.kills(), 2, 'fences again after a second loss');
});

test('without a lease file, contact alone decides', async () => {
  const r = rig({ lease: false });
  r.advance(29_999);
  await r.fence.check();
  assert.equal(r.kills(), 0);
  r.advance(1);
  await r.fence.check();
  assert.equal(r.kills(), 1);
});

test('a kill that fails is tried again at the next check', async () => {
  const r = rig({ lease: false });
  r.setKillFails(true);
  r.advance(40_000);
  await r.fence.check();
  assert.equal(r.kills(), 0);
  assert.ok(!r.fence.isFenced);
  r.setKillFails(false);
  await r.fence.check();
  assert.equal(r.kills(), 1);
});

test('killThroughHandlers force-stops every running or paused guest, and says when one resists', async () => {
  const stopped: Array<{ vmUuid: string; force?: boolean }> = [];
  const vms = [
    { uuid: 'a', state: 'Running' },
    { uuid: 'b', state: 'Paused' },
    { uuid: 'c', state: 'Stopped' },
  ];
  const kill = killThroughHandlers({
    'vm.list': async () => ({ vms }),
    'vm.stop': async (r: { vmUuid: string; force: boolean }) => {
      stopped.push(r);
      return {};
    },
  });
  assert.equal(await kill(), 2);
  assert.deepEqual(stopped, [
    { vmUuid: 'a', force: true },
    { vmUuid: 'b', force: true },
  ]);
  const stubborn = killThroughHandlers({
    'vm.list': async () => ({ vms }),
    'vm.stop': async (r: { vmUuid: string; force: boolean }) => {
      if (r.vmUuid === 'b') throw new Error('QMP timeout');
      return {};
    },
  });
  await assert.rejects(stubborn(), /1 of 2 guests could not be killed: Error: QMP timeout/);
});

test('the file lease writes the holder and the time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-lease-'));
  try {
    await fileLease(join(dir, 'lease'), 'host-1')();
    const lease = JSON.parse(readFileSync(join(dir, 'lease'), 'utf8'));
    assert.equal(lease.holder, 'host-1');
    assert.ok(Date.now() - Date.parse(lease.renewedAt) < 60_000);
    await assert.rejects(fileLease(join(dir, 'missing', 'lease'), 'host-1')(), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
