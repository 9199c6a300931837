import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostCandidate, StorageCandidate } from '../../scheduler/index.js';
import { type Snapshot, viewOf } from './candidates.js';

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
    cached: new Set(['nfs//A', 'local/h1/A']),
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

test('views see capacity changes made to the snapshot, with nothing copied', () => {
  const snap = snapshot();
  const a = viewOf(snap, 'A');
  const base = snap.hosts[0] as { cpuUsed: number; vmCount: number };
  base.cpuUsed += 3;
  base.vmCount += 1;
  (snap.hosts[1]!.primaryStorages[0] as { capacityUsed: number }).capacityUsed = 40;
  assert.deepEqual([a[0]!.cpuUsed, a[0]!.vmCount], [3, 1]);
  assert.equal(a[0]!.primaryStorages[0]!.capacityUsed, 40, 'shared storage: one object under every host');
  assert.equal(a[1]!.primaryStorages[1]!.capacityUsed, 0, 'a local share is its host’s own');
});
