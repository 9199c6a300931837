import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostCandidate, StorageCandidate } from '../../../scheduler/index.js';
import { CandidateSnapshot, type Snapshot, viewOf } from './candidates.js';

const storage = (uuid: string, type: StorageCandidate['type']): StorageCandidate => ({
  uuid,
  type,
  state: 'Enabled',
  status: 'Connected',
  capacityTotal: 100,
  capacityUsed: 0,
  overProvisioningRatio: 1,
  hasImageCached: false,
});

function snapshot(): Snapshot {
  const nfs = storage('nfs', 'nfs');
  const hosts: HostCandidate[] = ['h1', 'h2'].map((uuid) => ({
    uuid,
    name: uuid,
    zoneUuid: 'z',
    clusterUuid: 'c',
    hypervisorType: 'simulator',
    state: 'Enabled',
    status: 'Connected',
    cluster: { state: 'Enabled', zoneState: 'Enabled' },
    cpuTotal: 8,
    cpuUsed: 0,
    memoryTotal: 16,
    memoryUsed: 0,
    vmCount: 0,
    l2NetworkUuids: [],
    // the shared storage is one object for every host; each host has its own local share
    primaryStorages: [nfs, storage('local', 'local')],
  }));
  return {
    loadedAt: 0,
    hosts,
    byUuid: new Map(hosts.map((h) => [h.uuid, h])),
    addresses: new Map(),
    storages: new Map(),
    // image A cached on the nfs storage and on h1's local share; image B nowhere
    cached: new Map([
      ['nfs//A', undefined],
      ['local/h1/A', undefined],
    ]),
    views: new Map(),
  };
}

test('a view says where its image is cached: per storage, and per host for local storage', () => {
  const snap = snapshot();
  const a = viewOf(snap, 'A');
  assert.deepEqual(
    a.map((h) => h.primaryStorages.map((s) => [s.uuid, s.hasImageCached])),
    [
      [
        ['nfs', true],
        ['local', true],
      ],
      [
        ['nfs', true],
        ['local', false],
      ],
    ],
  );
  const b = viewOf(snap, 'B');
  assert.ok(b.every((h) => h.primaryStorages.every((s) => !s.hasImageCached)));
  assert.equal(viewOf(snap, 'A'), a, 'a view is built once per image');
});

test('local capacity updates reach the snapshot and every view', () => {
  const snap = snapshot();
  const candidates = new CandidateSnapshot(undefined as never);
  (candidates as unknown as { current: Snapshot }).current = snap;
  for (const h of snap.hosts)
    for (const ps of h.primaryStorages)
      snap.storages.set(`${ps.uuid}/${ps.type === 'local' ? h.uuid : ''}`, ps);
  const a = viewOf(snap, 'A');
  const b = viewOf(snap, 'B');
  candidates.onHostCapacity('h1', 3, 5, 1);
  candidates.onStorageUsed('nfs', null, 40);
  candidates.onStorageUsed('local', 'h2', 7);
  for (const view of [a, b, snap.hosts]) {
    assert.deepEqual([view[0]!.cpuUsed, view[0]!.memoryUsed, view[0]!.vmCount], [3, 5, 1]);
    assert.equal(
      view[1]!.primaryStorages[0]!.capacityUsed,
      40,
      'shared storage: one object under every host',
    );
    assert.equal(view[0]!.primaryStorages[1]!.capacityUsed, 0, 'a local share is its host’s own');
    assert.equal(view[1]!.primaryStorages[1]!.capacityUsed, 7);
  }
  candidates.onHostCapacity('h1', 3, 5, -1);
  assert.equal(a[0]!.vmCount, 0);
});

test('a newly cached image flips the flag in the existing view, for that storage only', () => {
  const snap = snapshot();
  const b = viewOf(snap, 'B');
  const candidates = new CandidateSnapshot(undefined as never);
  (candidates as unknown as { current: Snapshot }).current = snap;
  candidates.onImageCached('local', 'h2', 'B');
  assert.equal(viewOf(snap, 'B'), b, 'not rebuilt');
  assert.deepEqual(
    b.map((h) => h.primaryStorages.map((s) => s.hasImageCached)),
    [
      [false, false],
      [false, true],
    ],
  );
  candidates.onImageCached('nfs', null, 'B', { cacheUuid: 'c', path: '/p' });
  assert.ok(b.every((h) => h.primaryStorages[0]!.hasImageCached));
  assert.deepEqual(candidates.reusableCache('nfs', null, 'B'), { cacheUuid: 'c', path: '/p' });
  assert.equal(candidates.reusableCache('local', 'h2', 'B'), undefined, 'created by us: not reusable yet');
});
