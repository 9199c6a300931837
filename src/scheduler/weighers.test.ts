import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GiB } from './config.js';
import { schedule } from './schedule.js';
import { config, host, request, storage } from './test.fixture.js';
import type { AffinityGroup, HostCandidate, PlacementRequest, SchedulerConfigInput } from './types.js';

const ONLY = { memory: 0, cpu: 0, vmCount: 0, softAffinity: 0, softAntiAffinity: 0, imageCache: 0 };

/** Hosts in weight order (topN 1: no random draw), with scores. */
function rank(hosts: HostCandidate[], req: PlacementRequest = request(), over: SchedulerConfigInput = {}) {
  const result = schedule(hosts, req, config({ topN: 1, ...over }));
  return result.hosts.map((h) => [h.hostUuid, Math.round(h.score * 1000) / 1000] as const);
}
const order = (...args: Parameters<typeof rank>) => rank(...args).map(([u]) => u);

const byMemory = [
  host('low', { memoryUsed: 100 * GiB }),
  host('high', { memoryUsed: 0 }),
  host('mid', { memoryUsed: 50 * GiB }),
];

describe('free memory', () => {
  test('min–max normalised: the freest scores the multiplier, the fullest 0, linear between', () => {
    assert.deepEqual(rank(byMemory, request(), { weights: { ...ONLY, memory: 2 } }), [
      ['high', 2],
      ['mid', 1],
      ['low', 0],
    ]);
  });
  test('spread prefers free memory, pack the fullest host that fits', () => {
    assert.deepEqual(order(byMemory, request(), { weights: { ...ONLY, memory: 1 } }), ['high', 'mid', 'low']);
    assert.deepEqual(order(byMemory, request(), { weights: { ...ONLY, memory: 1 }, strategy: 'pack' }), [
      'low',
      'mid',
      'high',
    ]);
  });
  test('a metric equal on every host contributes nothing; ties go by host uuid', () => {
    const same = [host('b'), host('a'), host('c')];
    assert.deepEqual(rank(same, request(), { weights: { ...ONLY, memory: 1 } }), [
      ['a', 0],
      ['b', 0],
      ['c', 0],
    ]);
  });
});

describe('free CPU', () => {
  const hosts = [
    host('busy', { cpuUsed: 300 }),
    host('idle', { cpuUsed: 0 }),
    host('some', { cpuUsed: 100 }),
  ];
  test('spread prefers idle CPUs, pack busy ones', () => {
    const weights = { ...ONLY, cpu: 1 };
    assert.deepEqual(order(hosts, request(), { weights }), ['idle', 'some', 'busy']);
    assert.deepEqual(order(hosts, request(), { weights, strategy: 'pack' }), ['busy', 'some', 'idle']);
  });
});

describe('VM count', () => {
  const hosts = [host('many', { vmCount: 40 }), host('none', { vmCount: 0 }), host('few', { vmCount: 3 })];
  test('spread prefers fewer VMs, pack more', () => {
    const weights = { ...ONLY, vmCount: 1 };
    assert.deepEqual(order(hosts, request(), { weights }), ['none', 'few', 'many']);
    assert.deepEqual(order(hosts, request(), { weights, strategy: 'pack' }), ['many', 'few', 'none']);
  });
});

describe('defaults combine the load weighers', () => {
  test('spread: the emptiest host first; pack: the fullest first', () => {
    const hosts = [
      host('full', { memoryUsed: 100 * GiB, cpuUsed: 200, vmCount: 30 }),
      host('empty'),
      host('half', { memoryUsed: 50 * GiB, cpuUsed: 100, vmCount: 15 }),
    ];
    assert.deepEqual(order(hosts), ['empty', 'half', 'full']);
    assert.deepEqual(order(hosts, request(), { strategy: 'pack' }), ['full', 'half', 'empty']);
  });
});

const group = (policy: AffinityGroup['policy'], members: string[]): AffinityGroup => ({
  uuid: `g-${policy}`,
  name: policy,
  policy,
  enforcement: 'soft',
  memberHostUuids: members,
});

describe('soft affinity', () => {
  // 'member' is the fullest host: spread alone would put it last.
  const hosts = [
    host('free'),
    host('member', { memoryUsed: 100 * GiB, cpuUsed: 200, vmCount: 20 }),
    host('mid'),
  ];
  test('a host running members wins over freer hosts', () => {
    assert.equal(order(hosts, request({ affinityGroups: [group('affinity', ['member'])] }))[0], 'member');
    assert.equal(order(hosts)[2], 'member');
  });
  test('more members on a host weigh more', () => {
    const req = request({ affinityGroups: [group('affinity', ['mid', 'member', 'member'])] });
    assert.deepEqual(order(hosts, req), ['member', 'mid', 'free']);
  });
  test('it never filters: a full member host just drops out', () => {
    const full = [host('free'), host('member', { memoryUsed: 128 * GiB })];
    const result = schedule(
      full,
      request({ affinityGroups: [group('affinity', ['member'])] }),
      config({ topN: 1 }),
    );
    assert.deepEqual(
      result.hosts.map((h) => h.hostUuid),
      ['free'],
    );
  });
  test('an empty soft group changes nothing', () => {
    assert.deepEqual(rank(hosts, request({ affinityGroups: [group('affinity', [])] })), rank(hosts));
  });
});

describe('soft anti-affinity', () => {
  const hosts = [
    host('free'),
    host('mid', { memoryUsed: 50 * GiB }),
    host('full', { memoryUsed: 100 * GiB }),
  ];
  test('a host running members is avoided even when it is the freest', () => {
    const req = request({ affinityGroups: [group('anti-affinity', ['free'])] });
    assert.deepEqual(order(hosts, req), ['mid', 'full', 'free']);
  });
  test('a host with more members is avoided more', () => {
    const req = request({ affinityGroups: [group('anti-affinity', ['free', 'mid', 'mid'])] });
    assert.deepEqual(order(hosts, req), ['full', 'free', 'mid']);
  });
  test('when every host runs a member, it still places (soft)', () => {
    const req = request({ affinityGroups: [group('anti-affinity', ['free', 'mid', 'full'])] });
    assert.equal(schedule(hosts, req).hosts.length, 3);
  });
});

describe('image cache', () => {
  test('a host whose storage has the image cached is preferred', () => {
    const hosts = [
      host('a'),
      host('cached', { primaryStorages: [storage({ hasImageCached: true })] }),
      host('b'),
    ];
    assert.deepEqual(order(hosts)[0], 'cached');
    assert.deepEqual(rank(hosts, request(), { weights: { ...ONLY, imageCache: 3 } })[0], ['cached', 3]);
  });
  test('multiplier 0 turns a weigher off', () => {
    const hosts = [host('a'), host('cached', { primaryStorages: [storage({ hasImageCached: true })] })];
    assert.deepEqual(order(hosts, request(), { weights: { imageCache: 0 } }), ['a', 'cached']);
  });
});
