import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_CONFIG, GiB } from './config.js';
import { filterByName, firstFailing, pickStorage } from './filters.js';
import { config, ctxOf, host, request, storage } from './test.fixture.js';
import type { FilterName, HostCandidate, PlacementRequest, SchedulerConfig } from './types.js';

function passes(name: FilterName, h: HostCandidate, req = request(), cfg: SchedulerConfig = DEFAULT_CONFIG) {
  return filterByName(name).passes(h, ctxOf(req, cfg));
}
function why(name: FilterName, h: HostCandidate, req = request(), cfg: SchedulerConfig = DEFAULT_CONFIG) {
  const ctx = ctxOf(req, cfg);
  assert.equal(filterByName(name).passes(h, ctx), false, `${name} should reject ${h.uuid}`);
  return filterByName(name).reason(h, ctx);
}

describe('hints', () => {
  const h = host('h1', { primaryStorages: [storage({ uuid: 'ps-a' })] });
  test('no hints accept any host', () => assert.ok(passes('hints', h)));
  test('zone', () => {
    assert.ok(passes('hints', h, request({ hints: { zoneUuid: 'z1' } })));
    assert.equal(why('hints', h, request({ hints: { zoneUuid: 'z2' } })), 'in zone z1, not z2');
  });
  test('cluster', () => {
    assert.ok(passes('hints', h, request({ hints: { clusterUuid: 'c1' } })));
    assert.equal(why('hints', h, request({ hints: { clusterUuid: 'c9' } })), 'in cluster c1, not c9');
  });
  test('host', () => {
    assert.ok(passes('hints', h, request({ hints: { hostUuid: 'h1' } })));
    assert.equal(why('hints', h, request({ hints: { hostUuid: 'h2' } })), 'not the requested host h2');
  });
  test('primary storage: the host must reach it', () => {
    assert.ok(passes('hints', h, request({ hints: { primaryStorageUuid: 'ps-a' } })));
    assert.equal(
      why('hints', h, request({ hints: { primaryStorageUuid: 'ps-b' } })),
      'does not reach primary storage ps-b',
    );
  });
  test('all hints together', () => {
    const hints = { zoneUuid: 'z1', clusterUuid: 'c1', hostUuid: 'h1', primaryStorageUuid: 'ps-a' };
    assert.ok(passes('hints', h, request({ hints })));
    assert.ok(!passes('hints', h, request({ hints: { ...hints, clusterUuid: 'c2' } })));
  });
});

describe('excluded', () => {
  test('a host already tried is rejected, others pass', () => {
    const req = request({ excludeHosts: ['h1', 'h3'] });
    assert.match(why('excluded', host('h1'), req), /already tried/);
    assert.ok(passes('excluded', host('h2'), req));
    assert.ok(passes('excluded', host('h1'), request({ excludeHosts: [] })));
  });
});

describe('host-state', () => {
  test('Enabled and Connected passes', () => assert.ok(passes('host-state', host('h1'))));
  for (const [state, status, reason] of [
    ['Disabled', 'Connected', 'host is Disabled'],
    ['Maintenance', 'Connected', 'host is Maintenance'],
    ['Enabled', 'Connecting', 'host is Connecting'],
    ['Enabled', 'Disconnected', 'host is Disconnected'],
  ] as const) {
    test(`${state}/${status} is rejected`, () => {
      assert.equal(why('host-state', host('h1', { state, status })), reason);
    });
  }
});

describe('cluster-state', () => {
  test('enabled cluster in an enabled zone passes', () => assert.ok(passes('cluster-state', host('h1'))));
  test('disabled cluster', () => {
    const h = host('h1', { cluster: { state: 'Disabled', zoneState: 'Enabled' } });
    assert.equal(why('cluster-state', h), 'cluster is Disabled');
  });
  test('disabled zone', () => {
    const h = host('h1', { cluster: { state: 'Enabled', zoneState: 'Disabled' } });
    assert.equal(why('cluster-state', h), 'zone is Disabled');
  });
});

describe('image', () => {
  const image = request().image;
  test('same hypervisor type passes, another is rejected', () => {
    assert.ok(passes('image', host('h1')));
    assert.equal(
      why('image', host('h1', { hypervisorType: 'simulator' })),
      'hypervisor simulator cannot run image img-1 (kvm)',
    );
  });
  for (const hypervisorType of [undefined, '', 'any']) {
    test(`an image with hypervisorType ${JSON.stringify(hypervisorType)} runs anywhere`, () => {
      const req = request({ image: { ...image, hypervisorType } });
      assert.ok(passes('image', host('h1', { hypervisorType: 'simulator' }), req));
    });
  }
  test('an ISO needs a root disk size', () => {
    const iso = { ...image, format: 'iso' as const };
    assert.match(why('image', host('h1'), request({ image: iso, rootDiskSize: 0 })), /is an ISO/);
    assert.ok(passes('image', host('h1'), request({ image: iso, rootDiskSize: 1 })));
    assert.ok(passes('image', host('h1'), request({ image: { ...image, format: 'raw' }, rootDiskSize: 0 })));
  });
});

describe('l2-network', () => {
  test('no networks wanted: any host passes, even with none attached', () => {
    assert.ok(passes('l2-network', host('h1', { l2NetworkUuids: [] })));
    assert.ok(passes('l2-network', host('h1', { l2NetworkUuids: [] }), request({ l2NetworkUuids: [] })));
  });
  test('the cluster must have every wanted network', () => {
    const h = host('h1', { l2NetworkUuids: ['a', 'b', 'c'] });
    assert.ok(passes('l2-network', h, request({ l2NetworkUuids: ['a', 'c'] })));
    assert.equal(
      why('l2-network', h, request({ l2NetworkUuids: ['a', 'd', 'e'] })),
      'cluster c1 lacks L2 network(s) d, e',
    );
  });
});

describe('affinity (hard; soft never filters)', () => {
  const group = (policy: 'affinity' | 'anti-affinity', enforcement: 'hard' | 'soft', members: string[]) => ({
    uuid: `g-${policy}`,
    name: `web-${policy}`,
    policy,
    enforcement,
    memberHostUuids: members,
  });
  const req = (...groups: ReturnType<typeof group>[]): PlacementRequest =>
    request({ affinityGroups: groups });
  test('hard affinity: only hosts running members', () => {
    const r = req(group('affinity', 'hard', ['h1', 'h2']));
    assert.ok(passes('affinity', host('h1'), r));
    assert.ok(passes('affinity', host('h2'), r));
    assert.equal(why('affinity', host('h3'), r), 'hard affinity group web-affinity runs on other hosts');
  });
  test('hard affinity with an empty group: any host (the first VM)', () => {
    assert.ok(passes('affinity', host('h3'), req(group('affinity', 'hard', []))));
  });
  test('hard anti-affinity: never a host running a member', () => {
    const r = req(group('anti-affinity', 'hard', ['h1']));
    assert.equal(
      why('affinity', host('h1'), r),
      'hard anti-affinity group web-anti-affinity already runs here',
    );
    assert.ok(passes('affinity', host('h2'), r));
    assert.ok(passes('affinity', host('h1'), req(group('anti-affinity', 'hard', []))));
  });
  test('soft groups do not filter', () => {
    const r = req(group('affinity', 'soft', ['h1']), group('anti-affinity', 'soft', ['h2']));
    assert.ok(passes('affinity', host('h2'), r));
    assert.ok(passes('affinity', host('h3'), r));
  });
  test('two hard affinity groups on disjoint hosts admit nobody', () => {
    const a = { ...group('affinity', 'hard', ['h1']), uuid: 'ga' };
    const b = { ...group('affinity', 'hard', ['h2']), uuid: 'gb' };
    assert.ok(!passes('affinity', host('h1'), req(a, b)));
    assert.ok(!passes('affinity', host('h2'), req(a, b)));
  });
});

describe('cpu (over-commit)', () => {
  test('exactly at the limit passes, one vCPU over is rejected', () => {
    // 4 CPUs × 10 = 40 vCPUs
    assert.ok(passes('cpu', host('h1', { cpuTotal: 4, cpuUsed: 38 }), request({ cpu: 2 })));
    assert.equal(
      why('cpu', host('h1', { cpuTotal: 4, cpuUsed: 39 }), request({ cpu: 2 })),
      '1 free vCPU (4 × 10 − 39 used), needs 2',
    );
  });
  test('the ratio is configurable and fractional totals are floored', () => {
    const cfg = config({ cpuOvercommit: 1.5 });
    // 3 × 1.5 = 4.5 → 4
    assert.ok(passes('cpu', host('h1', { cpuTotal: 3, cpuUsed: 2 }), request({ cpu: 2 }), cfg));
    assert.ok(!passes('cpu', host('h1', { cpuTotal: 3, cpuUsed: 3 }), request({ cpu: 2 }), cfg));
  });
  test('an over-committed host (used > capacity) is rejected', () => {
    assert.ok(!passes('cpu', host('h1', { cpuTotal: 1, cpuUsed: 50 }), request({ cpu: 1 })));
  });
});

describe('memory (over-commit, reserved)', () => {
  // 16 GiB − 1 GiB reserved − 11 GiB used = 4 GiB free
  const h = host('h1', { memoryTotal: 16 * GiB, memoryUsed: 11 * GiB });
  test('exactly at the limit passes, one byte over is rejected', () => {
    assert.ok(passes('memory', h, request({ memory: 4 * GiB })));
    assert.equal(
      why('memory', h, request({ memory: 4 * GiB + 1 })),
      '4294967296 B free memory (after 1 GiB reserved), needs 4294967297 B',
    );
  });
  test('reserved memory is configurable', () => {
    assert.ok(passes('memory', h, request({ memory: 5 * GiB }), config({ reservedMemoryPerHost: 0 })));
    assert.ok(
      !passes('memory', h, request({ memory: 3 * GiB + 1 }), config({ reservedMemoryPerHost: 2 * GiB })),
    );
  });
  test('memory over-commit multiplies the total, not the reserve', () => {
    const cfg = config({ memoryOvercommit: 1.5 });
    // 24 − 1 − 11 = 12 GiB
    assert.ok(passes('memory', h, request({ memory: 12 * GiB }), cfg));
    assert.ok(!passes('memory', h, request({ memory: 12 * GiB + 1 }), cfg));
  });
});

describe('max-vms', () => {
  test('0 means no limit', () => assert.ok(passes('max-vms', host('h1', { vmCount: 1_000_000 }))));
  test('below the limit passes, at the limit is rejected', () => {
    const cfg = config({ maxVmsPerHost: 10 });
    assert.ok(passes('max-vms', host('h1', { vmCount: 9 }), request(), cfg));
    assert.equal(why('max-vms', host('h1', { vmCount: 10 }), request(), cfg), 'runs 10 VMs, the limit is 10');
  });
});

describe('storage', () => {
  // need = 20 GiB root + 5 + 5 GiB data (+ 1 GiB image when not cached)
  const req = request({ dataDiskSizes: [5 * GiB, 5 * GiB] });
  const withPs = (...ps: ReturnType<typeof storage>[]) => host('h1', { primaryStorages: ps });
  test('room for root + data + image exactly passes; one byte short is rejected', () => {
    assert.ok(passes('storage', withPs(storage({ capacityTotal: 31 * GiB })), req));
    assert.equal(
      why('storage', withPs(storage({ capacityTotal: 31 * GiB - 1 })), req),
      'no primary storage with room (ps-1 has 33285996543 B free, needs 33285996544 B)',
    );
  });
  test('a cached image needs no room for itself', () => {
    assert.ok(passes('storage', withPs(storage({ capacityTotal: 30 * GiB, hasImageCached: true })), req));
    assert.ok(!passes('storage', withPs(storage({ capacityTotal: 30 * GiB, hasImageCached: false })), req));
  });
  test('over-provisioning multiplies the total', () => {
    // 100 GiB × 2 − 169 GiB used = 31 GiB
    const ps = { capacityTotal: 100 * GiB, capacityUsed: 169 * GiB };
    assert.ok(passes('storage', withPs(storage({ ...ps, overProvisioningRatio: 2 })), req));
    assert.ok(!passes('storage', withPs(storage({ ...ps, overProvisioningRatio: 1.99 })), req));
  });
  test('capacityUsed counts', () => {
    assert.ok(!passes('storage', withPs(storage({ capacityTotal: 40 * GiB, capacityUsed: 10 * GiB })), req));
  });
  for (const over of [{ state: 'Disabled' }, { state: 'Maintenance' }, { status: 'Disconnected' }] as const) {
    test(`a storage that is ${JSON.stringify(over)} is never used`, () => {
      const reason = why('storage', withPs(storage(over)), req);
      assert.match(
        reason,
        /no enabled and connected primary storage \(ps-1 is (Disabled|Maintenance|Disconnected)\)/,
      );
      assert.equal(pickStorage(withPs(storage(over), storage({ uuid: 'ok' })), ctxOf(req))?.uuid, 'ok');
    });
  }
  test('no storage at all', () => assert.equal(why('storage', withPs(), req), 'reaches no primary storage'));
  test('migration needs shared storage: local does not count', () => {
    const mig = { ...req, requiresSharedStorage: true };
    assert.ok(passes('storage', withPs(storage({ type: 'local' })), req));
    assert.match(why('storage', withPs(storage({ type: 'local' })), mig), /migration needs shared storage/);
    for (const type of ['nfs', 'shared-mount', 'ceph'] as const) {
      assert.ok(passes('storage', withPs(storage({ type })), mig), type);
    }
    const both = withPs(
      storage({ uuid: 'loc', type: 'local', hasImageCached: true }),
      storage({ uuid: 'nfs' }),
    );
    assert.equal(pickStorage(both, ctxOf(mig))?.uuid, 'nfs');
    assert.equal(pickStorage(both, ctxOf(req))?.uuid, 'loc');
  });
  test('a primary storage hint restricts the choice to that storage', () => {
    const h = withPs(
      storage({ uuid: 'big', hasImageCached: true }),
      storage({ uuid: 'small', capacityTotal: 40 * GiB }),
    );
    const hinted = { ...req, hints: { primaryStorageUuid: 'small' } };
    assert.equal(pickStorage(h, ctxOf(hinted))?.uuid, 'small');
    const full = withPs(storage({ uuid: 'big' }), storage({ uuid: 'small', capacityTotal: GiB }));
    assert.ok(!passes('storage', full, hinted));
  });
  test('choice: cached image first, then most room (spread) or least room (pack)', () => {
    const h = withPs(
      storage({ uuid: 'mid', capacityTotal: 500 * GiB }),
      storage({ uuid: 'big', capacityTotal: 900 * GiB }),
      storage({ uuid: 'small', capacityTotal: 100 * GiB }),
      storage({ uuid: 'tiny', capacityTotal: 10 * GiB }),
    );
    assert.equal(pickStorage(h, ctxOf(req))?.uuid, 'big');
    assert.equal(pickStorage(h, ctxOf(req, config({ strategy: 'pack' })))?.uuid, 'small');
    const cached = withPs(
      ...h.primaryStorages,
      storage({ uuid: 'cached', capacityTotal: 50 * GiB, hasImageCached: true }),
    );
    assert.equal(pickStorage(cached, ctxOf(req))?.uuid, 'cached');
  });
});

describe('firstFailing', () => {
  test('stops at the first filter in order', () => {
    const h = host('h1', { state: 'Disabled', cpuTotal: 0, memoryTotal: 0, primaryStorages: [] });
    assert.equal(firstFailing(h, ctxOf())?.name, 'host-state');
    assert.equal(firstFailing(host('h1'), ctxOf()), undefined);
  });
});
