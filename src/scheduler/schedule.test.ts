import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloudError } from '../kernel/errors.js';
import { DEFAULT_CONFIG, GiB, resolveConfig } from './config.js';
import { seededRandom } from './random.js';
import { drawFirst, schedule } from './schedule.js';
import { config, host, request, storage } from './test.fixture.js';
import type { AffinityGroup, HostCandidate } from './types.js';

const uuids = (r: ReturnType<typeof schedule>) => r.hosts.map((h) => h.hostUuid);

/** h0 is the emptiest, h9 the fullest: a strict spread order h0 … h9. */
function graded(n = 10): HostCandidate[] {
  return Array.from({ length: n }, (_, i) =>
    host(`h${i}`, {
      memoryUsed: i * 8 * GiB,
      cpuUsed: i * 10,
      vmCount: i,
      primaryStorages: [storage({ uuid: `ps${i}` })],
    }),
  );
}

describe('result', () => {
  test('every acceptable host, best first, with its storage and score; the candidates themselves', () => {
    const hosts = graded(4);
    const r = schedule(hosts, request(), config({ topN: 1 }));
    assert.deepEqual(uuids(r), ['h0', 'h1', 'h2', 'h3']);
    assert.deepEqual(
      r.hosts.map((h) => h.primaryStorageUuid),
      ['ps0', 'ps1', 'ps2', 'ps3'],
    );
    assert.ok(r.hosts[0]!.score > r.hosts[1]!.score && r.hosts[2]!.score > r.hosts[3]!.score);
    assert.equal(r.hosts[0]!.host, hosts[0], 'no copy');
    assert.equal(r.hosts[0]!.storage, hosts[0]!.primaryStorages[0]);
    assert.equal(r.explanation, undefined);
    assert.equal(r.rejections, undefined);
    assert.ok(Object.values(r.rejected).every((n) => n === 0));
  });
  test('each rejected host is counted once, under its first failing filter', () => {
    const hosts = [
      host('ok'),
      host('off', { state: 'Disabled', memoryUsed: 128 * GiB }),
      host('nomem', { memoryUsed: 128 * GiB, primaryStorages: [] }),
      host('nodisk', { primaryStorages: [] }),
      host('elsewhere', { zoneUuid: 'z2', state: 'Disabled' }),
      host('tried'),
    ];
    const r = schedule(
      hosts,
      request({ hints: { zoneUuid: 'z1' }, excludeHosts: ['tried'] }),
      DEFAULT_CONFIG,
      {
        trace: true,
      },
    );
    assert.deepEqual(uuids(r), ['ok']);
    assert.deepEqual(Object.fromEntries(Object.entries(r.rejected).filter(([, n]) => n > 0)), {
      hints: 1,
      excluded: 1,
      'host-state': 1,
      memory: 1,
      storage: 1,
    });
    assert.deepEqual(
      r.rejections?.map((x) => [x.hostUuid, x.filter]),
      [
        ['off', 'host-state'],
        ['nomem', 'memory'],
        ['nodisk', 'storage'],
        ['elsewhere', 'hints'],
        ['tried', 'excluded'],
      ],
    );
    assert.equal(r.rejections?.[2]?.reason, 'reaches no primary storage');
  });
  test('candidates are not mutated (deep-frozen input works)', () => {
    const hosts = graded(5).map((h) => {
      for (const ps of h.primaryStorages) Object.freeze(ps);
      Object.freeze(h.primaryStorages);
      Object.freeze(h.cluster);
      return Object.freeze(h);
    });
    assert.equal(schedule(Object.freeze(hosts), request()).hosts.length, 5);
  });
  test('the order of the candidates does not matter', () => {
    const hosts = graded(8);
    const a = schedule(hosts, request(), DEFAULT_CONFIG, { random: seededRandom(7) });
    const b = schedule([...hosts].reverse(), request(), DEFAULT_CONFIG, { random: seededRandom(7) });
    assert.deepEqual(uuids(a), uuids(b));
  });
  test('no candidates: empty with an explanation', () => {
    const r = schedule([], request());
    assert.deepEqual(r.hosts, []);
    assert.equal(r.explanation, 'no candidate hosts');
  });
});

describe('hard affinity and anti-affinity', () => {
  const g = (policy: AffinityGroup['policy'], members: string[]): AffinityGroup => ({
    uuid: `g-${policy}`,
    name: 'web',
    policy,
    enforcement: 'hard',
    memberHostUuids: members,
  });
  test('affinity: only hosts running members, however full', () => {
    const r = schedule(
      graded(),
      request({ affinityGroups: [g('affinity', ['h7', 'h3', 'h3'])] }),
      config({ topN: 1 }),
    );
    assert.deepEqual(uuids(r), ['h3', 'h7']);
    assert.equal(r.rejected.affinity, 8);
  });
  test('affinity with an empty group (its first VM): every host', () => {
    assert.equal(schedule(graded(), request({ affinityGroups: [g('affinity', [])] })).hosts.length, 10);
  });
  test('affinity whose member hosts cannot take the VM: empty, explained', () => {
    const hosts = [host('m', { memoryUsed: 127 * GiB }), host('other')];
    const r = schedule(hosts, request({ affinityGroups: [g('affinity', ['m'])] }));
    assert.deepEqual(r.hosts, []);
    assert.deepEqual([r.rejected.affinity, r.rejected.memory], [1, 1]);
  });
  test('anti-affinity: never a host running a member', () => {
    const r = schedule(
      graded(4),
      request({ affinityGroups: [g('anti-affinity', ['h0', 'h2'])] }),
      config({ topN: 1 }),
    );
    assert.deepEqual(uuids(r), ['h1', 'h3']);
  });
  test('anti-affinity with an empty group: every host', () => {
    assert.equal(schedule(graded(4), request({ affinityGroups: [g('anti-affinity', [])] })).hosts.length, 4);
  });
  test('anti-affinity with a member on every host: empty, explained', () => {
    const r = schedule(graded(3), request({ affinityGroups: [g('anti-affinity', ['h0', 'h1', 'h2'])] }));
    assert.deepEqual(r.hosts, []);
    assert.equal(
      r.explanation,
      'no host satisfies hard anti-affinity group web (3 hosts: 3 broke hard affinity rules)',
    );
  });
});

describe('migration', () => {
  test('the source host is excluded and only shared storage counts', () => {
    const hosts = [
      host('src'),
      host('local-only', { primaryStorages: [storage({ uuid: 'l', type: 'local' })] }),
      host('shared', {
        primaryStorages: [storage({ uuid: 'l2', type: 'local' }), storage({ uuid: 'c', type: 'ceph' })],
      }),
    ];
    const r = schedule(hosts, request({ excludeHosts: ['src'], requiresSharedStorage: true }));
    assert.deepEqual(uuids(r), ['shared']);
    assert.equal(r.hosts[0]!.primaryStorageUuid, 'c');
    assert.deepEqual([r.rejected.excluded, r.rejected.storage], [1, 1]);
  });
});

describe('random draw among the top N', () => {
  const hosts = graded(10);
  test('topN 1 always returns the strict weight order', () => {
    for (let seed = 0; seed < 20; seed++) {
      const r = schedule(hosts, request(), config({ topN: 1 }), { random: seededRandom(seed) });
      assert.deepEqual(
        uuids(r),
        hosts.map((h) => h.uuid),
      );
    }
  });
  test('the same seed gives the same answer', () => {
    const a = schedule(hosts, request(), DEFAULT_CONFIG, { random: seededRandom(42) });
    const b = schedule(hosts, request(), DEFAULT_CONFIG, { random: seededRandom(42) });
    assert.deepEqual(uuids(a), uuids(b));
  });
  test('different seeds spread the first host over the top N only, the rest stays in weight order', () => {
    const firsts = new Map<string, number>();
    for (let seed = 0; seed < 600; seed++) {
      const r = uuids(schedule(hosts, request(), DEFAULT_CONFIG, { random: seededRandom(seed) }));
      firsts.set(r[0]!, (firsts.get(r[0]!) ?? 0) + 1);
      const rest = hosts.map((h) => h.uuid).filter((u) => u !== r[0]);
      assert.deepEqual(r.slice(1), rest);
    }
    assert.deepEqual([...firsts.keys()].sort(), ['h0', 'h1', 'h2']);
    for (const n of firsts.values()) assert.ok(n > 150 && n < 250, `roughly uniform: ${[...firsts]}`);
  });
  test('topN larger than the survivors draws among all of them', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 50; seed++) {
      seen.add(
        uuids(schedule(graded(2), request(), config({ topN: 5 }), { random: seededRandom(seed) }))[0]!,
      );
    }
    assert.deepEqual([...seen].sort(), ['h0', 'h1']);
  });
  test('drawFirst: the drawn entry moves to the front, a random source returning 1 is clamped', () => {
    const list = ['a', 'b', 'c', 'd', 'e'];
    drawFirst(list, 3, () => 0.5);
    assert.deepEqual(list, ['b', 'a', 'c', 'd', 'e']);
    const clamp = ['a', 'b', 'c', 'd'];
    drawFirst(clamp, 3, () => 1);
    assert.deepEqual(clamp, ['c', 'a', 'b', 'd']);
    const one = ['a'];
    drawFirst(one, 3, () => 0.9);
    assert.deepEqual(one, ['a']);
  });
  test('seededRandom is uniform-ish in [0, 1) and differs by seed', () => {
    const r = seededRandom(1);
    const xs = Array.from({ length: 1000 }, () => r());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.ok(Math.abs(xs.reduce((a, b) => a + b) / xs.length - 0.5) < 0.05);
    assert.notEqual(seededRandom(1)(), seededRandom(2)());
  });
});

describe('validation', () => {
  test('a malformed request is refused with every bad field', () => {
    const bad = request({ cpu: 0, memory: 1.5, rootDiskSize: -1, dataDiskSizes: [1, -5] });
    try {
      schedule([host('h')], { ...bad, image: { ...bad.image, size: Number.NaN, format: 'vmdk' as 'raw' } });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof CloudError);
      assert.equal(err.code, 'INVALID_PLACEMENT_REQUEST');
      assert.equal(err.reason, 'Invalid');
      const fields = (err.details!.fields as { field: string }[]).map((f) => f.field);
      assert.deepEqual(fields, [
        'cpu',
        'memory',
        'rootDiskSize',
        'dataDiskSizes[1]',
        'image.size',
        'image.format',
      ]);
    }
  });
  test('resolveConfig: defaults, overrides, and every bad field at once', () => {
    assert.deepEqual(resolveConfig(), DEFAULT_CONFIG);
    const cfg = resolveConfig({ strategy: 'pack', weights: { memory: 3 } });
    assert.equal(cfg.strategy, 'pack');
    assert.equal(cfg.weights.memory, 3);
    assert.equal(cfg.weights.cpu, DEFAULT_CONFIG.weights.cpu);
    assert.throws(
      () =>
        resolveConfig({
          cpuOvercommit: 0,
          memoryOvercommit: -1,
          topN: 0,
          maxVmsPerHost: 1.5,
          reservedMemoryPerHost: -1,
          strategy: 'fill' as 'pack',
          weights: { cpu: Number.POSITIVE_INFINITY, bogus: 1 } as object,
        }),
      (err: CloudError) =>
        err.code === 'INVALID_SCHEDULER_CONFIG' && (err.details!.fields as unknown[]).length === 8,
    );
  });
  test('defaults', () => {
    assert.deepEqual(
      { ...DEFAULT_CONFIG, weights: { ...DEFAULT_CONFIG.weights } },
      {
        cpuOvercommit: 10,
        memoryOvercommit: 1,
        reservedMemoryPerHost: GiB,
        maxVmsPerHost: 0,
        strategy: 'spread',
        topN: 3,
        weights: { memory: 1, cpu: 1, vmCount: 0.5, imageCache: 1, softAffinity: 5, softAntiAffinity: 5 },
      },
    );
  });
});
