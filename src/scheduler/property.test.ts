/**
 * Property test: random candidate sets × random requests × random configs. An oracle written
 * independently of filters.ts (plain inequalities, no floors) must agree with the scheduler on
 * every host: returned ⇔ fits, and a rejected host is counted under its first failing check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GiB } from './config.js';
import { seededRandom } from './random.js';
import { schedule } from './schedule.js';
import { config } from './test.fixture.js';
import type {
  AffinityGroup,
  FilterName,
  HostCandidate,
  PlacementRequest,
  SchedulerConfig,
  StorageCandidate,
} from './types.js';

type Rng = () => number;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const oneOf = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rng, p: number) => r() < p;
const HOSTS = Array.from({ length: 12 }, (_, i) => `h${i}`);
const NETS = ['n1', 'n2', 'n3'];
const near = (r: Rng, edge: number) => Math.max(0, edge + oneOf(r, [-1, 0, 0, 1, -GiB, GiB]));

function genRequest(r: Rng): PlacementRequest {
  const group = (i: number): AffinityGroup => ({
    uuid: `g${i}`,
    name: `g${i}`,
    policy: oneOf(r, ['affinity', 'anti-affinity'] as const),
    enforcement: oneOf(r, ['hard', 'soft'] as const),
    memberHostUuids: Array.from({ length: int(r, 0, 4) }, () => oneOf(r, HOSTS)),
  });
  return {
    cpu: int(r, 1, 8),
    memory: oneOf(r, [1, 2, 4, 8]) * GiB,
    rootDiskSize: oneOf(r, [0, 10 * GiB, 20 * GiB]),
    dataDiskSizes: Array.from({ length: int(r, 0, 2) }, () => oneOf(r, [GiB, 5 * GiB])),
    image: {
      uuid: 'img',
      hypervisorType: oneOf(r, [undefined, 'kvm', 'kvm', 'kvm', 'any', 'any', 'xen']),
      platform: 'Linux',
      format: oneOf(r, ['qcow2', 'raw', 'iso'] as const),
      size: oneOf(r, [0, GiB]),
    },
    hints: {
      zoneUuid: chance(r, 0.2) ? oneOf(r, ['z1', 'z2']) : undefined,
      clusterUuid: chance(r, 0.1) ? oneOf(r, ['c1', 'c2', 'c3']) : undefined,
      hostUuid: chance(r, 0.05) ? oneOf(r, HOSTS) : undefined,
      primaryStorageUuid: chance(r, 0.1) ? oneOf(r, ['shared1', 'local-h1', 'shared2']) : undefined,
    },
    excludeHosts: Array.from({ length: int(r, 0, 2) }, () => oneOf(r, HOSTS)),
    affinityGroups: Array.from({ length: int(r, 0, 2) }, (_, i) => group(i)),
    requiresSharedStorage: chance(r, 0.3),
    l2NetworkUuids: NETS.filter(() => chance(r, 0.2)),
  };
}

function genHost(r: Rng, uuid: string, req: PlacementRequest, cfg: SchedulerConfig): HostCandidate {
  const cpuTotal = oneOf(r, [1, 2, 4, 8]);
  const memoryTotal = oneOf(r, [8, 16, 32]) * GiB;
  const disks = req.rootDiskSize + (req.dataDiskSizes ?? []).reduce((a, b) => a + b, 0);
  const ps = (id: string, type: StorageCandidate['type']): StorageCandidate => {
    const capacityTotal = oneOf(r, [20, 40, 100]) * GiB;
    const overProvisioningRatio = oneOf(r, [1, 1, 1.5, 2.5]);
    const cached = chance(r, 0.3);
    const edge = capacityTotal * overProvisioningRatio - disks - (cached ? 0 : req.image.size);
    return {
      uuid: id,
      type,
      state: chance(r, 0.9) ? 'Enabled' : oneOf(r, ['Disabled', 'Maintenance'] as const),
      status: chance(r, 0.9) ? 'Connected' : 'Disconnected',
      capacityTotal,
      capacityUsed: chance(r, 0.5) ? near(r, Math.floor(edge)) : int(r, 0, capacityTotal),
      overProvisioningRatio,
      hasImageCached: cached,
    };
  };
  const storages: StorageCandidate[] = [];
  if (chance(r, 0.7)) storages.push(ps(`local-${uuid}`, 'local'));
  if (chance(r, 0.5)) storages.push(ps('shared1', 'nfs'));
  if (chance(r, 0.3)) storages.push(ps('shared2', oneOf(r, ['ceph', 'shared-mount'] as const)));
  const cluster = oneOf(r, ['c1', 'c2', 'c3']);
  const cpuEdge = Math.floor(cpuTotal * cfg.cpuOvercommit) - req.cpu;
  const memEdge = Math.floor(memoryTotal * cfg.memoryOvercommit) - cfg.reservedMemoryPerHost - req.memory;
  return {
    uuid,
    name: uuid,
    zoneUuid: cluster === 'c3' ? 'z2' : 'z1',
    clusterUuid: cluster,
    hypervisorType: chance(r, 0.9) ? 'kvm' : 'simulator',
    state: chance(r, 0.85) ? 'Enabled' : oneOf(r, ['Disabled', 'Maintenance'] as const),
    status: chance(r, 0.85) ? 'Connected' : oneOf(r, ['Connecting', 'Disconnected'] as const),
    cluster: {
      state: chance(r, 0.95) ? 'Enabled' : 'Disabled',
      zoneState: chance(r, 0.95) ? 'Enabled' : 'Disabled',
    },
    cpuTotal,
    cpuUsed: chance(r, 0.4) ? Math.max(0, cpuEdge + int(r, -1, 1)) : int(r, 0, cpuTotal * 4),
    memoryTotal,
    memoryUsed: chance(r, 0.4) ? near(r, memEdge) : int(r, 0, memoryTotal),
    vmCount: int(r, 0, 12),
    l2NetworkUuids: NETS.filter(() => chance(r, 0.8)),
    primaryStorages: storages,
  };
}

/** The filters restated as plain inequalities, in the same order. */
function oracle(req: PlacementRequest, cfg: SchedulerConfig): [FilterName, (h: HostCandidate) => boolean][] {
  const h = req.hints ?? {};
  const disks = req.rootDiskSize + (req.dataDiskSizes ?? []).reduce((a, b) => a + b, 0);
  const hv = req.image.hypervisorType;
  const groups = req.affinityGroups ?? [];
  const storageOk = (ps: StorageCandidate) =>
    ps.state === 'Enabled' &&
    ps.status === 'Connected' &&
    !(req.requiresSharedStorage && ps.type === 'local') &&
    (h.primaryStorageUuid === undefined || h.primaryStorageUuid === ps.uuid) &&
    ps.capacityUsed + disks + (ps.hasImageCached ? 0 : req.image.size) <=
      ps.capacityTotal * ps.overProvisioningRatio;
  return [
    [
      'hints',
      (x) =>
        (h.zoneUuid === undefined || x.zoneUuid === h.zoneUuid) &&
        (h.clusterUuid === undefined || x.clusterUuid === h.clusterUuid) &&
        (h.hostUuid === undefined || x.uuid === h.hostUuid) &&
        (h.primaryStorageUuid === undefined ||
          x.primaryStorages.some((p) => p.uuid === h.primaryStorageUuid)),
    ],
    ['excluded', (x) => !(req.excludeHosts ?? []).includes(x.uuid)],
    ['host-state', (x) => x.state === 'Enabled' && x.status === 'Connected'],
    ['cluster-state', (x) => x.cluster.state === 'Enabled' && x.cluster.zoneState === 'Enabled'],
    [
      'image',
      (x) =>
        !(req.image.format === 'iso' && req.rootDiskSize === 0) &&
        (hv === undefined || hv === 'any' || hv === x.hypervisorType),
    ],
    ['l2-network', (x) => (req.l2NetworkUuids ?? []).every((n) => x.l2NetworkUuids.includes(n))],
    [
      'affinity',
      (x) =>
        groups.every(
          (g) =>
            g.enforcement === 'soft' ||
            g.memberHostUuids.length === 0 ||
            (g.policy === 'affinity') === g.memberHostUuids.includes(x.uuid),
        ),
    ],
    ['cpu', (x) => x.cpuUsed + req.cpu <= x.cpuTotal * cfg.cpuOvercommit],
    [
      'memory',
      (x) => x.memoryUsed + cfg.reservedMemoryPerHost + req.memory <= x.memoryTotal * cfg.memoryOvercommit,
    ],
    ['max-vms', (x) => cfg.maxVmsPerHost === 0 || x.vmCount + 1 <= cfg.maxVmsPerHost],
    ['storage', (x) => x.primaryStorages.some(storageOk)],
  ];
}

test('random candidates × requests: returned ⇔ passes every filter; rejections at the first failing one', () => {
  const r = seededRandom(20240601);
  let placed = 0;
  let empty = 0;
  for (let round = 0; round < 1000; round++) {
    const cfg = config({
      cpuOvercommit: oneOf(r, [1, 4, 10, 16]),
      memoryOvercommit: oneOf(r, [1, 1.5]),
      reservedMemoryPerHost: oneOf(r, [0, GiB]),
      maxVmsPerHost: oneOf(r, [0, 0, 5, 10]),
      strategy: oneOf(r, ['spread', 'pack'] as const),
      topN: int(r, 1, 4),
    });
    const req = genRequest(r);
    const hosts = HOSTS.slice(0, int(r, 0, HOSTS.length)).map((u) => genHost(r, u, req, cfg));
    const result = schedule(hosts, req, cfg, { random: r, trace: true });
    const checks = oracle(req, cfg);
    const returned = new Map(result.hosts.map((x) => [x.hostUuid, x]));
    const rejectedAt = new Map(result.rejections?.map((x) => [x.hostUuid, x.filter]));
    for (const h of hosts) {
      const firstFail = checks.find(([, ok]) => !ok(h))?.[0];
      const context = `round ${round} host ${h.uuid}: ${JSON.stringify({ req, h })}`;
      assert.equal(rejectedAt.get(h.uuid), firstFail, context);
      assert.equal(returned.has(h.uuid), firstFail === undefined, context);
    }
    // every chosen storage is itself acceptable, and a cached one is chosen whenever one qualifies
    const storageCheck = checks.at(-1)![1];
    for (const x of result.hosts) {
      assert.ok(
        storageCheck({ ...x.host, primaryStorages: [x.storage] }),
        `round ${round}: storage ${x.primaryStorageUuid}`,
      );
      const cachedOk = x.host.primaryStorages.some(
        (p) => p.hasImageCached && storageCheck({ ...x.host, primaryStorages: [p] }),
      );
      assert.equal(x.storage.hasImageCached, cachedOk, `round ${round}: cache preference`);
    }
    // counts add up; order is by score after the one drawn from the top N
    const total = Object.values(result.rejected).reduce((a, b) => a + b, 0);
    assert.equal(total + result.hosts.length, hosts.length);
    const rest = result.hosts.slice(1);
    for (let i = 1; i < rest.length; i++) assert.ok(rest[i - 1]!.score >= rest[i]!.score);
    if (result.hosts.length > 0) {
      const sorted = [...result.hosts].sort(
        (a, b) => b.score - a.score || (a.hostUuid < b.hostUuid ? -1 : 1),
      );
      assert.ok(sorted.indexOf(result.hosts[0]!) < cfg.topN, `round ${round}: first drawn from the top N`);
      assert.equal(result.explanation, undefined);
      placed++;
    } else {
      assert.ok(result.explanation && result.explanation.length > 0);
      empty++;
    }
  }
  // the generator must exercise both outcomes
  assert.ok(placed > 150 && empty > 150, `placed ${placed}, empty ${empty}`);
});
