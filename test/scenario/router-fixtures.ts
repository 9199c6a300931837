/**
 * The VIP/EIP/port-forwarding and virtual-router scenarios' environment, built through the API on
 * top of buildVmEnv: an L2 attached to the cluster, a shared public L3 (floating IPs, router
 * uplinks) and a system management L3, each with a range, a default virtual-router offering with
 * its appliance image; per test a private virtual-router L3 with a /24 (`vrL3`), tenants with
 * room in their quotas, and VMs with NICs. (network-fixtures.ts holds the NIC scenarios' own.)
 */
import assert from 'node:assert/strict';
import { QUOTA_NAMES } from '../../src/resources/identity/quota/quota.js';
import type { Api, TestNode } from '../support/node.js';
import { buildVmEnv, GiB, type VmEnv } from './vm-env.js';

export interface RouterEnv extends VmEnv {
  l2: string;
  publicL3: string;
  managementL3: string;
  offering: string;
}

let envs = 0;
let privates = 0;

export async function succeed(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

/** The error of a request refused at once (no job), asserting its status. */
export async function refused(api: Api, method: string, path: string, body: unknown, status: number) {
  const res = await api.call(method, path, body);
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body.error as { code: string; message: string; details?: Record<string, unknown> };
}

export async function buildRouterEnv(
  t: TestNode,
  o: { prefix?: string; hosts?: number } = {},
): Promise<RouterEnv> {
  const prefix = o.prefix ?? 'rt';
  const n = ++envs;
  const env = await buildVmEnv(t, { prefix, hosts: o.hosts ?? 2, hostCpu: 64, hostMemory: 256 * GiB });
  const l2 = (
    await succeed(t.admin, 'POST', '/v1/l2-networks', {
      name: `${prefix}-l2`,
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: `eth${n}`,
    })
  ).resourceUuid;
  await succeed(t.admin, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, {
    clusterUuid: env.cluster,
  });
  const publicL3 = (
    await succeed(t.admin, 'POST', '/v1/l3-networks', {
      name: `${prefix}-public`,
      l2NetworkUuid: l2,
      category: 'public',
      shared: true,
    })
  ).resourceUuid;
  await succeed(t.admin, 'POST', '/v1/ip-ranges', {
    name: `${prefix}-public-range`,
    l3NetworkUuid: publicL3,
    cidr: `172.${16 + n}.0.0/22`,
  });
  const managementL3 = (
    await succeed(t.admin, 'POST', '/v1/l3-networks', {
      name: `${prefix}-management`,
      l2NetworkUuid: l2,
      category: 'system',
    })
  ).resourceUuid;
  await succeed(t.admin, 'POST', '/v1/ip-ranges', {
    name: `${prefix}-management-range`,
    l3NetworkUuid: managementL3,
    cidr: `10.${200 + n}.0.0/22`,
  });
  const offering = (
    await succeed(t.admin, 'POST', '/v1/virtual-router-offerings', {
      name: `${prefix}-vr-offering`,
      zoneUuid: env.zone,
      cpu: 1,
      memory: GiB,
      imageUuid: env.image,
      managementL3NetworkUuid: managementL3,
      publicL3NetworkUuid: publicL3,
      isDefault: true,
    })
  ).resourceUuid;
  return { ...env, l2, publicL3, managementL3, offering };
}

/** A private virtual-router L3 of `api`'s account with a /24 (gateway .1, the router's address). */
export async function vrL3(
  env: RouterEnv,
  api: Api,
  name = `vr-net-${privates + 1}`,
): Promise<{ l3: string; cidr: string }> {
  const k = ++privates;
  const l3 = (
    await succeed(api, 'POST', '/v1/l3-networks', {
      name,
      l2NetworkUuid: env.l2,
      category: 'private',
      provider: 'virtual-router',
      dns: ['8.8.8.8'],
      domainName: 'vr.example',
    })
  ).resourceUuid;
  const cidr = `192.168.${k % 250}.0/24`;
  await succeed(api, 'POST', '/v1/ip-ranges', { name: `${name}-range`, l3NetworkUuid: l3, cidr });
  return { l3, cidr };
}

/** A tenant account (with room for many VMs) and its API client. */
export async function tenant(t: TestNode, name: string): Promise<{ api: Api; uuid: string }> {
  const acct = await succeed(t.admin, 'POST', '/v1/accounts', { name, password: `${name}-password` });
  await t.db.db
    .insertInto('quotas')
    .values(QUOTA_NAMES.map((q) => ({ accountUuid: acct.resourceUuid, name: q, limitValue: 10_000 * GiB })))
    .onConflict((oc) => oc.columns(['accountUuid', 'name']).doUpdateSet({ limitValue: 10_000 * GiB }))
    .execute();
  return { api: await t.anon.login(name, `${name}-password`), uuid: acct.resourceUuid };
}

export interface NetVm {
  vm: string;
  nics: Array<{ uuid: string; ip: string; l3NetworkUuid: string; mac: string }>;
}

/** A Running VM of `api` on `l3s` (NIC order = l3 order), with its NICs. */
export async function vmOn(t: TestNode, env: RouterEnv, api: Api, l3s: string[]): Promise<NetVm> {
  const job = await succeed(api, 'POST', '/v1/vms', {
    name: `net-vm-${Math.random().toString(36).slice(2, 8)}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: l3s,
  });
  const nics = await t.db.db
    .selectFrom('vmNics')
    .select(['uuid', 'ip', 'l3NetworkUuid', 'mac', 'deviceId'])
    .where('vmUuid', '=', job.resourceUuid)
    .orderBy('deviceId')
    .execute();
  return {
    vm: job.resourceUuid,
    nics: nics.map((n) => ({ uuid: n.uuid, ip: n.ip!, l3NetworkUuid: n.l3NetworkUuid, mac: n.mac })),
  };
}
