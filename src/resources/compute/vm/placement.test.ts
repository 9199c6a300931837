import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS } from '../../../kernel/settings.js';
import { seededRandom } from '../../../scheduler/index.js';
import { createQuota } from './admission.js';
import { quotaDelta } from './lifecycle.js';
import { presentVm } from './model.js';
import { SAMPLE_SIZE, sample, schedulerConfig } from './placement.js';

test('sample: small lists whole; large ones a distinct random subset of SAMPLE_SIZE', () => {
  const small = Array.from({ length: SAMPLE_SIZE * 2 }, (_, i) => i);
  assert.equal(sample(small), small);
  const hosts = Array.from({ length: 1000 }, (_, i) => i);
  const picked = sample(hosts, SAMPLE_SIZE, seededRandom(7));
  assert.equal(picked.length, SAMPLE_SIZE);
  assert.equal(new Set(picked).size, SAMPLE_SIZE, 'no host twice');
  assert.deepEqual(
    [...hosts].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
    'reordered, nothing lost',
  );
  // every host gets drawn sooner or later
  const seen = new Set<number>();
  const random = seededRandom(11);
  for (let i = 0; i < 200; i++) for (const h of sample(hosts, SAMPLE_SIZE, random)) seen.add(h);
  assert.equal(seen.size, 1000);
});

test('schedulerConfig: settings, the offering’s strategy, and the best host for affinity-group members', () => {
  const cfg = schedulerConfig({ ...DEFAULT_SETTINGS, cpuOvercommit: 4, placementStrategy: 'spread' }, 'pack');
  assert.deepEqual([cfg.cpuOvercommit, cfg.strategy, cfg.topN], [4, 'pack', 3]);
  assert.equal(schedulerConfig(DEFAULT_SETTINGS, null).strategy, DEFAULT_SETTINGS.placementStrategy);
  assert.equal(schedulerConfig(DEFAULT_SETTINGS, null, true).topN, 1);
});

test('quotas: a create counts the VM and every volume made with it; a change counts the difference', () => {
  const GiB = 1024 ** 3;
  assert.deepEqual(
    createQuota({
      cpu: 2,
      memory: 4 * GiB,
      rootDiskSize: 10 * GiB,
      dataDisks: [
        { volumeUuid: 'a', size: GiB, diskOfferingUuid: null },
        { volumeUuid: 'b', size: 2 * GiB, diskOfferingUuid: 'o' },
      ],
    }),
    { 'vm.num': 1, 'vm.cpu': 2, 'vm.memory': 4 * GiB, 'volume.data.num': 2, 'volume.capacity': 13 * GiB },
  );
  const change = { cpu: 4, memory: GiB, oldCpu: 2, oldMemory: 2 * GiB };
  assert.deepEqual(quotaDelta(change, 1), { 'vm.cpu': 2, 'vm.memory': 0 }, 'reserved with the admission');
  assert.deepEqual(quotaDelta(change, -1), { 'vm.cpu': 0, 'vm.memory': GiB }, 'given back at the end');
});

test('presentVm keeps placement bookkeeping inside', () => {
  assert.deepEqual(presentVm({ uuid: 'v', placement: {}, migrationTargetUuid: null, state: 'Running' }), {
    uuid: 'v',
    state: 'Running',
  });
});
