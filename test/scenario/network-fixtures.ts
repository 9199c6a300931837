/**
 * The networking scenarios' environment, built through the API: a VM environment (vm-env.ts:
 * zone, cluster, simulated hosts, storage, image, offerings) plus a no-vlan L2 on eth0 attached
 * to the cluster and a flat shared L3 with one IP range; and helpers to add more L3s, read NICs
 * and addresses, and look at what the simulated hosts were configured with. Other network
 * tests may append helpers here.
 */
import assert from 'node:assert/strict';
import type { Api, TestNode } from '../support/node.js';
import { buildVmEnv, ok, type VmEnv } from './vm-env.js';

export interface NetEnv extends VmEnv {
  l2: string;
  /** flat, shared, 10.<n>.0.10 – 10.<n>.0.250 /24, gateway .1 */
  l3: string;
  range: string;
  /** the /24's first three octets, e.g. '172.20.3' */
  subnet: string;
}

let nets = 0;

/** An L3 on `l2` with one range `<subnet>.<first>`–`<subnet>.<last>`/24, gateway `<subnet>.1`. */
export async function addL3(
  t: TestNode,
  l2: string,
  o: {
    name?: string;
    subnet?: string;
    first?: number;
    last?: number;
    provider?: 'flat' | 'virtual-router' | null;
    shared?: boolean;
    category?: 'public' | 'private' | 'system';
    api?: Api;
    /** the range as a whole subnet instead (gateway: its first address) */
    cidr?: string;
  } = {},
): Promise<{ l3: string; range: string; subnet: string }> {
  const api = o.api ?? t.admin;
  const subnet = o.subnet ?? `172.${20 + Math.floor(nets / 250)}.${nets % 250}`;
  nets++;
  const job = await api.job('POST', '/v1/l3-networks', {
    name: o.name ?? `l3-${subnet}`,
    l2NetworkUuid: l2,
    category: o.category ?? 'private',
    ...(o.provider === null ? {} : { provider: o.provider ?? 'flat' }),
    ...(o.shared ? { shared: true } : {}),
    dns: ['8.8.8.8'],
  });
  assert.equal(job.state, 'Succeeded', JSON.stringify(job));
  const l3 = job.resourceUuid as string;
  const r = await api.job('POST', '/v1/ip-ranges', {
    name: `range-${subnet}`,
    l3NetworkUuid: l3,
    ...(o.cidr
      ? { cidr: o.cidr }
      : {
          startIp: `${subnet}.${o.first ?? 10}`,
          endIp: `${subnet}.${o.last ?? 250}`,
          prefixLength: 24,
          gateway: `${subnet}.1`,
        }),
  });
  assert.equal(r.state, 'Succeeded', JSON.stringify(r));
  return { l3, range: r.resourceUuid, subnet };
}

/** A no-vlan L2 on `iface` in the env's zone, attached to `clusters` (default: the env's). */
export async function addL2(
  t: TestNode,
  env: VmEnv,
  iface: string,
  clusters = [env.cluster],
): Promise<string> {
  const l2 = (
    await ok(t, 'POST', '/v1/l2-networks', {
      name: `l2-${iface}-${nets++}`,
      zoneUuid: env.zone,
      type: 'no-vlan',
      physicalInterface: iface,
    })
  ).resourceUuid as string;
  for (const c of clusters)
    await ok(t, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: c });
  return l2;
}

/** buildVmEnv + an L2 on eth0 attached to its cluster + a flat shared L3 with a range. */
export async function buildNetEnv(t: TestNode, o: Parameters<typeof buildVmEnv>[1] = {}): Promise<NetEnv> {
  const env = await buildVmEnv(t, o);
  const l2 = await addL2(t, env, 'eth0');
  const { l3, range, subnet } = await addL3(t, l2, { shared: true, category: 'public' });
  return { ...env, l2, l3, range, subnet };
}

export const nicsOf = (t: TestNode, vmUuid: string) =>
  t.db.db.selectFrom('vmNics').selectAll().where('vmUuid', '=', vmUuid).orderBy('deviceId').execute();

export const addressesOf = (t: TestNode, vmUuid: string) =>
  t.db.db.selectFrom('ipAddresses').selectAll().where('vmUuid', '=', vmUuid).orderBy('ip').execute();

/** Management address of a host (the simulator's key for its network state). */
export async function addressOfHost(t: TestNode, hostUuid: string): Promise<string> {
  const h = await t.db.db
    .selectFrom('hosts')
    .select('managementIp')
    .where('uuid', '=', hostUuid)
    .executeTakeFirstOrThrow();
  return h.managementIp;
}

/** The NIC uuids a host's flat DHCP currently answers for (the simulator's applied state). */
export async function dhcpNicsOn(t: TestNode, hostUuid: string): Promise<string[]> {
  const state = t.node.services.deps.simulator.networks.host(await addressOfHost(t, hostUuid));
  return (state.dhcp?.state ?? []).flatMap((n) => n.entries.map((e) => e.nicUuid)).sort();
}

/** The bridges a host currently has (names), from the simulator. */
export async function bridgesOn(t: TestNode, hostUuid: string): Promise<string[]> {
  const state = t.node.services.deps.simulator.networks.host(await addressOfHost(t, hostUuid));
  return (state.bridges?.state ?? []).map((b) => b.bridgeName).sort();
}

/** NICs hot-plugged into `vmUuid` on a host (vm.attach-nic minus vm.detach-nic). */
export async function pluggedOn(t: TestNode, hostUuid: string, vmUuid: string): Promise<string[]> {
  const state = t.node.services.deps.simulator.networks.host(await addressOfHost(t, hostUuid));
  return [...(state.plugged.get(vmUuid)?.keys() ?? [])].sort();
}
