/**
 * The security-group scenarios' environment, built through the API: buildVmEnv's hosts, an L2
 * attached to the cluster and a shared flat L3 (IPv4 /24) on it, so VMs get NICs without a
 * router; VMs placed on a given host (admin's hostUuid hint) for deterministic fan-out checks;
 * and readers of what each simulated host's firewall was told (`sg.apply`).
 */
import assert from 'node:assert/strict';
import type { SgNic } from '../../src/contract/agent.js';
import type { Api, TestNode } from '../support/node.js';
import { buildVmEnv, GiB, type VmEnv } from './vm-env.js';

export interface SgEnv extends VmEnv {
  l2: string;
  l3: string;
  /** management IP of each host, by host uuid */
  address: Map<string, string>;
}

export interface Nic {
  vm: string;
  uuid: string;
  ip: string;
  mac: string;
  host: string | null;
}

let envs = 0;

export async function succeed(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job)}`);
  return job;
}

export async function buildSgEnv(t: TestNode, o: { prefix: string; hosts: number }): Promise<SgEnv> {
  const n = ++envs;
  const env = await buildVmEnv(t, { prefix: o.prefix, hosts: o.hosts, hostCpu: 64, hostMemory: 256 * GiB });
  const l2 = (
    await succeed(t.admin, 'POST', '/v1/l2-networks', {
      name: `${o.prefix}-l2`,
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: `sg${n}`,
    })
  ).resourceUuid as string;
  await succeed(t.admin, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, {
    clusterUuid: env.cluster,
  });
  const l3 = (
    await succeed(t.admin, 'POST', '/v1/l3-networks', {
      name: `${o.prefix}-flat`,
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'flat',
      shared: true,
    })
  ).resourceUuid as string;
  await succeed(t.admin, 'POST', '/v1/ip-ranges', {
    name: `${o.prefix}-range`,
    l3NetworkUuid: l3,
    cidr: `10.${60 + n}.0.0/24`,
  });
  const hosts = await t.db.db
    .selectFrom('hosts')
    .select(['uuid', 'managementIp'])
    .where('uuid', 'in', env.hosts)
    .execute();
  return { ...env, l2, l3, address: new Map(hosts.map((h) => [h.uuid, h.managementIp])) };
}

export async function nicOf(t: TestNode, vm: string): Promise<Nic> {
  const nic = await t.db.db
    .selectFrom('vmNics')
    .select(['uuid', 'ip', 'mac', 'hostUuid'])
    .where('vmUuid', '=', vm)
    .executeTakeFirstOrThrow();
  return { vm, uuid: nic.uuid, ip: nic.ip!, mac: nic.mac, host: nic.hostUuid };
}

/** A Running VM with one NIC on the env's L3: on `host` (admin only), in `groups`. */
export async function vmWithNic(
  t: TestNode,
  env: SgEnv,
  o: { api?: Api; host?: string; groups?: string[] } = {},
): Promise<Nic> {
  const job = await succeed(o.api ?? t.admin, 'POST', '/v1/vms', {
    name: `sg-vm-${Math.random().toString(36).slice(2, 8)}`,
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
    l3NetworkUuids: [env.l3],
    ...(o.host ? { hostUuid: o.host } : {}),
    ...(o.groups ? { securityGroupUuids: o.groups } : {}),
  });
  const nic = await nicOf(t, job.resourceUuid);
  if (o.host) assert.equal(nic.host, o.host, 'the NIC is carried by the VM’s host');
  return nic;
}

/** The firewall state the simulated host was last told (none: no sg.apply yet). */
export function sgOf(t: TestNode, env: SgEnv, host: string): SgNic[] {
  return t.node.services.deps.simulator.networks.host(env.address.get(host)!).sg?.state ?? [];
}

/** The NICs listed on each host, by host uuid (hosts listing none included, with []). */
export function nicsByHost(t: TestNode, env: SgEnv): Record<string, string[]> {
  return Object.fromEntries(
    env.hosts.map((h) => [
      h,
      sgOf(t, env, h)
        .map((n) => n.nicUuid)
        .sort(),
    ]),
  );
}

/** The hosts (uuids) that were sent sg.apply after log sequence `from`. */
export function sgApplied(t: TestNode, env: SgEnv, from: number): string[] {
  const byAddress = new Map([...env.address].map(([uuid, ip]) => [ip, uuid]));
  const sent = t.node.services.deps.simulator.networks.commands({ command: 'sg.apply', afterSeq: from });
  return [...new Set(sent.map((c) => byAddress.get(c.address)).filter((h): h is string => !!h))].sort();
}

export const logSeq = (t: TestNode) => t.node.services.deps.simulator.networks.lastSeq();
