/**
 * Storage scenarios: a volume's life on primary storage without a VM. Contract points: answers'
 * shapes (path, sizes), and idempotent removal ("deleting a missing volume: success") of
 * snapshots, volumes and cached images.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { ok } from './host-under-test.js';
import type { SuiteContext } from './suite.js';

const MIB = 1024 * 1024;

export function storageScenarios(ctx: SuiteContext, timeout: number): void {
  test('a volume: create, resize, snapshot, revert, and every removal twice', { timeout }, async () => {
    const host = ctx.host();
    const storage = host.fixtures.storage;
    const volumeUuid = randomUUID();
    const snapshotUuid = randomUUID();
    const made = await ok<{ path: string; actualSize: number }>(host, 'volume.create', {
      volumeUuid,
      size: 16 * MIB,
      format: 'qcow2',
      storage,
    });
    assert.ok(typeof made.path === 'string' && made.path.length > 0);
    assert.ok(Number.isSafeInteger(made.actualSize) && made.actualSize >= 0);
    try {
      assert.deepEqual(await ok(host, 'volume.resize', { volumeUuid, size: 32 * MIB, storage }), {});
      const snap = await ok<{ size: number; path: string }>(host, 'snapshot.create', {
        volumeUuid,
        snapshotUuid,
        storage,
      });
      assert.ok(typeof snap.path === 'string' && snap.path.length > 0);
      assert.ok(Number.isSafeInteger(snap.size) && snap.size >= 0);
      assert.deepEqual(await ok(host, 'snapshot.revert', { volumeUuid, snapshotUuid, storage }), {});
      assert.deepEqual(await ok(host, 'snapshot.delete', { snapshotUuid, storage }), {});
      assert.deepEqual(
        await ok(host, 'snapshot.delete', { snapshotUuid, storage }),
        {},
        'a missing snapshot',
      );
    } finally {
      assert.deepEqual(await ok(host, 'volume.delete', { volumeUuid, storage }), {});
    }
    assert.deepEqual(await ok(host, 'volume.delete', { volumeUuid, storage }), {}, 'a missing volume');
    assert.deepEqual(
      await ok(host, 'image.uncache', { imageUuid: randomUUID(), storage }),
      {},
      'a missing image',
    );
  });
}
