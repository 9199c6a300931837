/**
 * Fixtures for the volume, snapshot and quota scenarios: primary storages and VMs written straight
 * into the node's database (their own kinds are built elsewhere), accounts through the API, and
 * readers of the counters every test checks (capacity, quota usage).
 */
import assert from 'node:assert/strict';
import { newId } from '../../src/kernel/ids.js';
import type { Api, TestNode } from '../support/node.js';

export const GiB = 1024 ** 3;

export interface Infra {
  zone: string;
  cluster: string;
  hosts: string[];
}

let seq = 0;
export const next = () => ++seq;

/** A shared (nfs, or ceph) primary storage attached to the cluster. */
export async function sharedStorage(
  t: TestNode,
  infra: Infra,
  capacity = 1000 * GiB,
  type: 'nfs' | 'ceph' = 'nfs',
): Promise<string> {
  const uuid = newId();
  const admin = await adminAccount(t);
  await t.db.db
    .insertInto('primaryStorages')
    .values({
      uuid,
      name: `${type}-${next()}`,
      description: null,
      accountUuid: admin,
      type,
      url: type === 'nfs' ? `nfs://10.0.0.1/export/${uuid}` : `rbd:pool${next()}`,
      zoneUuid: infra.zone,
      capacityTotal: capacity,
    })
    .execute();
  await t.db.db
    .insertInto('primaryStorageClusters')
    .values({ primaryStorageUuid: uuid, clusterUuid: infra.cluster })
    .execute();
  return uuid;
}

/** A local primary storage with a share of `perHost` bytes on each host. */
export async function localStorage(t: TestNode, infra: Infra, perHost = 100 * GiB): Promise<string> {
  const uuid = newId();
  await t.db.db
    .insertInto('primaryStorages')
    .values({
      uuid,
      name: `local-${next()}`,
      description: null,
      accountUuid: await adminAccount(t),
      type: 'local',
      url: `file:///var/lib/nimbus/${uuid}`,
      zoneUuid: infra.zone,
    })
    .execute();
  await t.db.db
    .insertInto('primaryStorageClusters')
    .values({ primaryStorageUuid: uuid, clusterUuid: infra.cluster })
    .execute();
  for (const host of infra.hosts) {
    await t.db.db
      .insertInto('primaryStorageHosts')
      .values({ primaryStorageUuid: uuid, hostUuid: host, capacityTotal: perHost })
      .execute();
  }
  return uuid;
}

async function adminAccount(t: TestNode): Promise<string> {
  const row = await t.db.db
    .selectFrom('accounts')
    .select('uuid')
    .where('type', '=', 'admin')
    .executeTakeFirstOrThrow();
  return row.uuid;
}

/** A VM row on `host` (and, unless Stopped, defined on its simulated hypervisor). */
export async function newVm(
  t: TestNode,
  o: { account: string; host: string; state?: string; task?: string | null },
): Promise<string> {
  const uuid = newId();
  const host = await t.db.db
    .selectFrom('hosts')
    .selectAll()
    .where('uuid', '=', o.host)
    .executeTakeFirstOrThrow();
  const state = o.state ?? 'Running';
  await t.db.db
    .insertInto('vms')
    .values({
      uuid,
      name: `vm-${next()}`,
      description: null,
      accountUuid: o.account,
      zoneUuid: host.zoneUuid,
      clusterUuid: host.clusterUuid,
      hostUuid: state === 'Stopped' ? null : host.uuid,
      lastHostUuid: host.uuid,
      instanceOfferingUuid: null,
      imageUuid: null,
      rootVolumeUuid: null,
      cpu: 1,
      memory: GiB,
      platform: 'Linux',
      state,
      task: o.task ?? null,
      affinityGroupUuid: null,
      destroyedAt: null,
    })
    .execute();
  await t.db.db
    .insertInto('simulatorVms')
    .values({
      vmUuid: uuid,
      hostAddress: host.managementIp,
      state: state === 'Paused' ? 'Paused' : state === 'Running' ? 'Running' : 'Stopped',
      cpu: 1,
      memory: GiB,
    })
    .execute();
  return uuid;
}

/** A root volume for a VM, as the VM create chain would record it (capacity reserved too). */
export async function rootVolume(
  t: TestNode,
  o: { vm: string; account: string; ps: string; host?: string | null; size?: number },
) {
  const uuid = newId();
  const size = o.size ?? 10 * GiB;
  const hostUuid = o.host ?? null;
  if (hostUuid) {
    await t.db.db
      .updateTable('primaryStorageHosts')
      .set((eb) => ({ capacityUsed: eb('capacityUsed', '+', size) }))
      .where('primaryStorageUuid', '=', o.ps)
      .where('hostUuid', '=', hostUuid)
      .execute();
  } else {
    await t.db.db
      .updateTable('primaryStorages')
      .set((eb) => ({ capacityUsed: eb('capacityUsed', '+', size) }))
      .where('uuid', '=', o.ps)
      .execute();
  }
  await t.db.db
    .insertInto('volumes')
    .values({
      uuid,
      name: `root-${next()}`,
      description: null,
      accountUuid: o.account,
      type: 'Root',
      vmUuid: o.vm,
      deviceId: 0,
      primaryStorageUuid: o.ps,
      hostUuid,
      diskOfferingUuid: null,
      imageUuid: null,
      size,
      state: 'Ready',
      deletedAt: null,
      path: `/root/${uuid}`,
    })
    .execute();
  await t.db.db.updateTable('vms').set({ rootVolumeUuid: uuid }).where('uuid', '=', o.vm).execute();
  return uuid;
}

/** A normal account, logged in. */
export async function tenant(t: TestNode): Promise<{ api: Api; uuid: string }> {
  const name = `tenant-${next()}-${Math.random().toString(36).slice(2, 7)}`;
  const job = await t.admin.job('POST', '/v1/accounts', { name, password: 'tenant-password' });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  return { api: await t.anon.login(name, 'tenant-password'), uuid: job.resourceUuid };
}

/** The capacity used on a storage (on one host's share for local storage). */
export async function used(t: TestNode, ps: string, host?: string): Promise<number> {
  if (host) {
    const row = await t.db.db
      .selectFrom('primaryStorageHosts')
      .select('capacityUsed')
      .where('primaryStorageUuid', '=', ps)
      .where('hostUuid', '=', host)
      .executeTakeFirstOrThrow();
    return row.capacityUsed;
  }
  return (
    await t.db.db
      .selectFrom('primaryStorages')
      .select('capacityUsed')
      .where('uuid', '=', ps)
      .executeTakeFirstOrThrow()
  ).capacityUsed;
}

/** An account's quota usage by name (0 for names without a row). */
export async function usage(t: TestNode, account: string): Promise<Record<string, number>> {
  const rows = await t.db.db
    .selectFrom('quotas')
    .select(['name', 'used'])
    .where('accountUuid', '=', account)
    .execute();
  const out: Record<string, number> = {};
  for (const r of rows) if (r.used !== 0) out[r.name] = r.used;
  return out;
}

/** Every primary storage's used capacity equals the sum of its live volumes (the invariant). */
export async function assertCapacityInvariant(t: TestNode): Promise<void> {
  const shared = await t.db.db
    .selectFrom('primaryStorages')
    .select(['uuid', 'type', 'capacityUsed'])
    .execute();
  for (const ps of shared) {
    if (ps.type === 'local') {
      const shares = await t.db.db
        .selectFrom('primaryStorageHosts')
        .select(['hostUuid', 'capacityUsed'])
        .where('primaryStorageUuid', '=', ps.uuid)
        .execute();
      for (const s of shares) {
        const sum = await volumeSum(t, ps.uuid, s.hostUuid);
        assert.equal(s.capacityUsed, sum, `local ${ps.uuid} on host ${s.hostUuid}`);
      }
    } else {
      assert.equal(ps.capacityUsed, await volumeSum(t, ps.uuid, null), `storage ${ps.uuid}`);
    }
  }
}

async function volumeSum(t: TestNode, ps: string, host: string | null): Promise<number> {
  let q = t.db.db
    .selectFrom('volumes')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('n'))
    .where('primaryStorageUuid', '=', ps);
  q = host ? q.where('hostUuid', '=', host) : q.where('hostUuid', 'is', null);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A job that must have succeeded. */
export async function ok(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}
