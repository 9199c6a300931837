import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GiB, MiB } from './config.js';
import { formatBytes, formatBytesPair, plural } from './format.js';
import { schedule } from './schedule.js';
import { config, host, request, storage } from './test.fixture.js';
import type { HostCandidate, PlacementRequest, SchedulerConfigInput } from './types.js';

function why(hosts: HostCandidate[], req: PlacementRequest = request(), over: SchedulerConfigInput = {}) {
  const r = schedule(hosts, req, config(over));
  assert.deepEqual(r.hosts, []);
  return r.explanation;
}

describe('formatBytes', () => {
  for (const [bytes, text] of [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [512 * MiB, '512 MiB'],
    [GiB, '1 GiB'],
    [1.5 * GiB, '1.5 GiB'],
    [64 * GiB, '64 GiB'],
    [GiB + 1, '1 GiB'],
    [10 * GiB + 123 * MiB, '10.12 GiB'],
    [2048 * GiB, '2 TiB'],
    [-2 * GiB, '-2 GiB'],
  ] as const) {
    test(`${bytes} → ${text}`, () => assert.equal(formatBytes(bytes), text));
  }
  test('formatBytesPair falls back to bytes only when rounding hides a difference', () => {
    assert.deepEqual(formatBytesPair(GiB, 2 * GiB), ['1 GiB', '2 GiB']);
    assert.deepEqual(formatBytesPair(GiB, GiB), ['1 GiB', '1 GiB']);
    assert.deepEqual(formatBytesPair(GiB, GiB + 1), ['1073741824 B', '1073741825 B']);
  });
  test('plural', () =>
    assert.deepEqual(
      [plural(1, 'host'), plural(0, 'host'), plural(2, 'host')],
      ['1 host', '0 hosts', '2 hosts'],
    ));
});

describe('explanation names the tightest constraint, the scope and the breakdown', () => {
  test('memory in a zone (the canonical example)', () => {
    const zone = { state: 'Enabled', zoneState: 'Enabled', zoneName: 'z1' } as const;
    const hosts = [
      host('a', { cluster: zone, memoryUsed: 100 * GiB }),
      host('b', { cluster: zone, memoryUsed: 100 * GiB }),
      host('c', { cluster: zone, memoryUsed: 70 * GiB }),
      host('d', { cluster: zone, state: 'Disabled' }),
      host('elsewhere', { zoneUuid: 'z2' }),
    ];
    assert.equal(
      why(hosts, request({ memory: 64 * GiB, hints: { zoneUuid: 'z1' } })),
      'no host with 64 GiB free memory in zone z1 (4 hosts: 3 lacked memory, 1 disabled or disconnected)',
    );
  });
  test('uuids stand in for names the candidates do not carry', () => {
    assert.equal(
      why([host('a', { state: 'Maintenance' })], request({ hints: { clusterUuid: 'c1' } })),
      'no enabled and connected host in cluster c1 (1 host: 1 disabled or disconnected)',
    );
  });
  test('nothing in scope', () => {
    assert.equal(
      why([host('a'), host('b'), host('c')], request({ hints: { clusterUuid: 'c9', hostUuid: 'b' } })),
      'no host in cluster c9, on host name-b among 3 candidate hosts',
    );
    assert.equal(why([], request({ hints: { zoneUuid: 'z3' } })), 'no candidate hosts in zone z3');
  });
  test('CPU', () => {
    assert.equal(
      why([host('a', { cpuTotal: 1, cpuUsed: 10 })], request({ cpu: 1 })),
      'no host with 1 free vCPU (CPU over-commit 10×) (1 host: 1 lacked CPU)',
    );
  });
  test('storage, shared for a migration, with the image size', () => {
    const hosts = [
      host('a', { primaryStorages: [storage({ type: 'local' })] }),
      host('b', { primaryStorages: [] }),
    ];
    assert.equal(
      why(hosts, request({ requiresSharedStorage: true, dataDiskSizes: [10 * GiB] })),
      'no host reaches an enabled shared primary storage with 30 GiB free for the disks (plus 1 GiB where the image is not cached) (2 hosts: 2 lacked primary storage)',
    );
  });
  test('storage behind a primary storage hint', () => {
    const hosts = [host('a', { primaryStorages: [storage({ uuid: 'ps-x', capacityTotal: GiB })] })];
    assert.match(
      why(
        hosts,
        request({ hints: { primaryStorageUuid: 'ps-x' }, image: { ...request().image, size: 0 } }),
      ) ?? '',
      /^primary storage ps-x cannot take 20 GiB of disks \(1 host: 1 lacked primary storage\)$/,
    );
  });
  test('L2 networks', () => {
    assert.equal(
      why([host('a')], request({ l2NetworkUuids: ['l2-a', 'l2-b'] })),
      'no host whose cluster has L2 networks l2-a, l2-b attached (1 host: 1 lacked L2 networks)',
    );
  });
  test('image: hypervisor mismatch and an ISO without a root disk', () => {
    assert.equal(
      why([host('a', { hypervisorType: 'simulator' })]),
      'no kvm host for image img-1 (1 host: 1 incompatible with the image)',
    );
    const iso = request({ rootDiskSize: 0, image: { ...request().image, format: 'iso' } });
    assert.match(why([host('a')], iso) ?? '', /^image img-1 is an ISO and the request has no root disk size/);
  });
  test('hard affinity names the groups', () => {
    const groups = [
      { uuid: 'g1', name: 'db', policy: 'affinity', enforcement: 'hard', memberHostUuids: ['x'] },
      { uuid: 'g2', name: 'web', policy: 'anti-affinity', enforcement: 'hard', memberHostUuids: ['a'] },
    ] as const;
    assert.equal(
      why([host('a')], request({ affinityGroups: groups })),
      'no host satisfies hard affinity group db and hard anti-affinity group web (1 host: 1 broke hard affinity rules)',
    );
  });
  test('excluded, disabled cluster, VM limit', () => {
    assert.equal(
      why([host('a'), host('b')], request({ excludeHosts: ['a', 'b'] })),
      'no host besides the 2 already tried (2 hosts: 2 already tried)',
    );
    assert.match(
      why([host('a', { cluster: { state: 'Disabled', zoneState: 'Enabled' } })]) ?? '',
      /^no host in an enabled cluster and zone \(1 host: 1 in a disabled cluster or zone\)/,
    );
    assert.equal(
      why([host('a', { vmCount: 5 })], request(), { maxVmsPerHost: 5 }),
      'no host below the limit of 5 VMs (1 host: 1 at the VM limit)',
    );
  });
  test('breakdown is by count; a tie goes to the later filter (the last obstacle)', () => {
    const hosts = [
      host('off', { status: 'Disconnected' }),
      host('full', { memoryUsed: 128 * GiB }),
      host('busy', { cpuUsed: 320 }),
      host('busy2', { cpuUsed: 320 }),
    ];
    assert.equal(
      why(hosts),
      'no host with 2 free vCPUs (CPU over-commit 10×) (4 hosts: 2 lacked CPU, 1 disabled or disconnected, 1 lacked memory)',
    );
    assert.match(
      why(hosts.slice(0, 2)) ?? '',
      /^no host with 4 GiB free memory \(2 hosts: 1 disabled or disconnected, 1 lacked memory\)/,
    );
  });
});
