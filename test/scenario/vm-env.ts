/**
 * The VM scenarios' environment, built through the API as a user would: zone → cluster → simulated
 * hosts, a simulated backup storage with a public image, a primary storage (local or nfs) attached
 * to the cluster, and instance offerings; plus small readers and waiters the VM tests share.
 */
import assert from 'node:assert/strict';
import { buildInfra, type TestNode } from '../support/node.js';

export const GiB = 1024 ** 3;

export interface VmEnv {
  zone: string;
  cluster: string;
  hosts: string[];
  ps: string;
  image: string;
  small: string;
  medium: string;
}

let seq = 0;
export const next = () => ++seq;
/** environments built by this process: each gets its own 10.<n>.x.y addresses */
let envs = 0;

export async function ok(t: TestNode, method: string, path: string, body?: unknown): Promise<any> {
  const job = await t.admin.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

/** Hosts of `hostCpu` × `hostMemory` each; storage `local` (per host) or `nfs` (shared). */
export async function buildVmEnv(
  t: TestNode,
  o: {
    hosts?: number;
    prefix?: string;
    storage?: 'local' | 'nfs';
    capacity?: number;
    hostCpu?: number;
    hostMemory?: number;
  } = {},
): Promise<VmEnv> {
  const prefix = o.prefix ?? 'vm';
  const net = 100 + envs++;
  const infra = await buildInfra(t.admin, 0, prefix);
  const n = o.hosts ?? 2;
  const hosts: string[] = [];
  for (let i = 0; i < n; i += 25) {
    const made = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, (_, k) =>
        ok(t, 'POST', '/v1/hosts', {
          name: `${prefix}-host-${i + k}`,
          clusterUuid: infra.cluster,
          managementIp: `10.${net}.${Math.floor((i + k) / 250)}.${((i + k) % 250) + 1}`,
          simulatorCpu: o.hostCpu ?? 8,
          simulatorMemory: o.hostMemory ?? 16 * GiB,
        }),
      ),
    );
    hosts.push(...made.map((j) => j.resourceUuid as string));
  }
  const bs = (
    await ok(t, 'POST', '/v1/backup-storages', {
      name: `${prefix}-bs`,
      type: 'simulator',
      url: `sim://${prefix}-bs`,
      capacity: 1024 * GiB,
    })
  ).resourceUuid;
  await ok(t, 'POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: infra.zone });
  const ps = (
    await ok(t, 'POST', '/v1/primary-storages', {
      name: `${prefix}-ps`,
      zoneUuid: infra.zone,
      type: o.storage ?? 'local',
      url: o.storage === 'nfs' ? `nfs://10.0.0.9/${prefix}` : `/var/lib/nimbus/${prefix}`,
      capacity: o.capacity ?? 1024 * GiB,
    })
  ).resourceUuid;
  await ok(t, 'POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, { clusterUuid: infra.cluster });
  const image = (
    await ok(t, 'POST', '/v1/images', {
      name: `${prefix}-image`,
      url: `http://images.example/${prefix}.qcow2?size=${2 * GiB}&actualSize=${GiB}`,
      format: 'qcow2',
      backupStorageUuid: bs,
      isPublic: true,
    })
  ).resourceUuid;
  const small = (
    await ok(t, 'POST', '/v1/instance-offerings', { name: `${prefix}-small`, cpu: 1, memory: GiB })
  ).resourceUuid;
  const medium = (
    await ok(t, 'POST', '/v1/instance-offerings', { name: `${prefix}-medium`, cpu: 2, memory: 4 * GiB })
  ).resourceUuid;
  return { zone: infra.zone, cluster: infra.cluster, hosts, ps, image, small, medium };
}

/** Creates a VM and waits for its job. */
export async function createVm(t: TestNode, env: VmEnv, extra: Record<string, unknown> = {}, api = t.admin) {
  return api.job('POST', '/v1/vms', {
    name: `vm-${next()}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    ...extra,
  });
}

/** A Running VM (asserting its create succeeded). */
export async function runningVm(
  t: TestNode,
  env: VmEnv,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const job = await createVm(t, env, extra);
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  return job.resourceUuid;
}

export const vmOf = (t: TestNode, uuid: string) =>
  t.db.db.selectFrom('vms').selectAll().where('uuid', '=', uuid).executeTakeFirst();

export const simVmOf = (t: TestNode, uuid: string) =>
  t.db.db.selectFrom('simulatorVms').selectAll().where('vmUuid', '=', uuid).executeTakeFirst();

export async function fault(t: TestNode, spec: Record<string, unknown>): Promise<void> {
  const res = await t.admin.post('/v1/simulator/faults', spec);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

export async function clearFaults(t: TestNode): Promise<void> {
  assert.equal((await t.admin.delete('/v1/simulator/faults')).status, 204);
}

/** Everything a leak would show in: host counters, storage counters, volumes, cache, quota. */
export async function footprint(t: TestNode) {
  const db = t.db.db;
  const [hosts, shares, storages, volumes, cache, quotas, sims] = await Promise.all([
    db.selectFrom('hosts').select(['uuid', 'cpuUsed', 'memoryUsed', 'vmCount']).orderBy('uuid').execute(),
    db.selectFrom('primaryStorageHosts').select(['hostUuid', 'capacityUsed']).orderBy('hostUuid').execute(),
    db.selectFrom('primaryStorages').select(['uuid', 'capacityUsed']).orderBy('uuid').execute(),
    db.selectFrom('volumes').select(['uuid', 'state', 'vmUuid']).orderBy('uuid').execute(),
    db.selectFrom('imageCache').select(['uuid', 'state']).orderBy('uuid').execute(),
    db
      .selectFrom('quotas')
      .select(['accountUuid', 'name', 'used'])
      .orderBy('accountUuid')
      .orderBy('name')
      .execute(),
    db.selectFrom('simulatorVms').select(['vmUuid', 'state', 'hostAddress']).orderBy('vmUuid').execute(),
  ]);
  return { hosts, shares, storages, volumes, cache, quotas, sims };
}
