import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import {
  DEFAULT_SIMULATED_BS_CAPACITY,
  SimulatedBackupStorage,
  simulatedImageSize,
} from './backup-storage.js';

const MiB = 1024 ** 2;

describe('simulated image sizes', () => {
  test('?size= and ?actualSize= set them; either alone sets both', () => {
    assert.deepEqual(simulatedImageSize('http://x/a.qcow2?size=2361393152'), {
      size: 2361393152,
      actualSize: 2361393152,
    });
    assert.deepEqual(simulatedImageSize(`http://x/a.qcow2?size=${4 * MiB}&actualSize=${MiB}`), {
      size: 4 * MiB,
      actualSize: MiB,
    });
    assert.deepEqual(simulatedImageSize(`http://x/a.raw?actualSize=${MiB}`), { size: MiB, actualSize: MiB });
  });

  test('without them: deterministic, whole MiB, between 256 MiB and 4 GiB', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const url = `http://images.example/img-${i}.qcow2`;
      const s = simulatedImageSize(url);
      assert.deepEqual(simulatedImageSize(url), s);
      assert.equal(s.size, s.actualSize);
      assert.equal(s.size % MiB, 0);
      assert.ok(s.size >= 256 * MiB && s.size <= 4096 * MiB, String(s.size));
      seen.add(s.size);
    }
    assert.ok(seen.size > 150, 'different URLs get different sizes');
  });

  test('a bad URL or size is refused with IMAGE_URL_INVALID', () => {
    for (const url of ['not a url', 'http://x/a?size=0', 'http://x/a?size=1.5', 'http://x/a?actualSize=-3']) {
      assert.throws(
        () => simulatedImageSize(url),
        (e) => e instanceof CloudError && e.code === 'IMAGE_URL_INVALID',
        url,
      );
    }
  });
});

describe('simulated backup storage', () => {
  let t: TestDatabase;
  const faults = new FaultRegistry();
  let sim: SimulatedBackupStorage;
  const bs = (url: string) => ({ uuid: newId(), type: 'simulator', url });

  before(async () => {
    t = await createTestDatabase({ max: 10 });
    sim = new SimulatedBackupStorage({ db: t.db, faults });
  });
  after(() => t.drop());

  test('an unprovisioned storage does not answer', async () => {
    await assert.rejects(
      sim.send(bs('sim://nowhere'), 'bs.connect', {}),
      (e) => e instanceof CloudError && e.code === 'BACKUP_STORAGE_UNREACHABLE',
    );
  });

  test('connect reports capacity; downloads fill it, idempotently; delete frees it', async () => {
    const s = bs('sim://one');
    await sim.provision(s, {});
    assert.deepEqual(await sim.send(s, 'bs.connect', {}), {
      capacityTotal: DEFAULT_SIMULATED_BS_CAPACITY,
      capacityAvailable: DEFAULT_SIMULATED_BS_CAPACITY,
    });
    await sim.provision(s, { capacity: 10 * MiB });
    await sim.provision(s, {}); // an existing storage keeps its capacity
    const image = newId();
    const url = `http://x/a.raw?size=${4 * MiB}`;
    assert.deepEqual(await sim.send(s, 'bs.download-image', { imageUuid: image, url }), {
      size: 4 * MiB,
      actualSize: 4 * MiB,
    });
    await sim.send(s, 'bs.download-image', { imageUuid: image, url });
    assert.deepEqual(await sim.send(s, 'bs.connect', {}), {
      capacityTotal: 10 * MiB,
      capacityAvailable: 6 * MiB,
    });
    await sim.send(s, 'bs.delete-image', { imageUuid: image });
    await sim.send(s, 'bs.delete-image', { imageUuid: image });
    assert.equal((await sim.send(s, 'bs.connect', {})).capacityAvailable, 10 * MiB);
  });

  test('concurrent downloads never overfill it', async () => {
    const s = bs('sim://small');
    await sim.provision(s, { capacity: 10 * MiB });
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () =>
        sim.send(s, 'bs.download-image', { imageUuid: newId(), url: `http://x/a.raw?size=${MiB}` }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 10);
    assert.ok(
      results.every(
        (r) =>
          r.status === 'fulfilled' ||
          (r.reason instanceof CloudError && r.reason.code === 'BACKUP_STORAGE_FULL'),
      ),
    );
    assert.equal((await sim.send(s, 'bs.connect', {})).capacityAvailable, 0);
  });

  test('faults apply per command and per storage URL', async () => {
    const s = bs('sim://faulty');
    const other = bs('sim://fine');
    await sim.provision(s, {});
    await sim.provision(other, {});
    faults.add({ point: 'command:bs.download-image', host: s.url, error: { code: 'BROKEN' } });
    try {
      await assert.rejects(
        sim.send(s, 'bs.download-image', { imageUuid: newId(), url: 'http://x/a' }),
        (e) => e instanceof CloudError && e.code === 'BROKEN',
      );
      await sim.send(other, 'bs.download-image', { imageUuid: newId(), url: 'http://x/a' });
      await sim.send(s, 'bs.connect', {});
    } finally {
      faults.clear();
    }
  });
});
