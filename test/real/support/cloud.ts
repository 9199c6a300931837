/**
 * Test-only: the cloud side of the real-host tests, built through the public API only — a test
 * node with a kvm zone/cluster, hosts added with their agents' secret, storage, the test guest
 * image served over HTTP from the root namespace, an offering, networks — and the readers the
 * tests share (a VM's NIC, waiting for a VM state).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureGuestImage } from '../../support/guest-image.js';
import type { Api, TestNode } from '../../support/node.js';
import { type KvmLab, type LabHost, waitFor } from './kvm-lab.js';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

export async function ok(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const job = await api.job(method, path, body);
  assert.equal(job.state, 'Succeeded', `${method} ${path}: ${JSON.stringify(job.error ?? job)}`);
  return job;
}

/** An HTTP server on the root namespace's underlay address serving one file (the image source). */
export async function serveFile(lab: KvmLab, file: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, lab.rootIp, r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${lab.rootIp}:${port}/guest.qcow2`, server };
}

export interface Cloud {
  zone: string;
  cluster: string;
  ps: string;
  bs: string;
  image: string;
  offering: string;
  hosts: Map<LabHost, string>;
}

/** zone, kvm cluster, shared-mount primary storage, simulated backup storage, guest image, offering */
export async function buildCloud(t: TestNode, lab: KvmLab, imageUrl: string): Promise<Cloud> {
  const api = t.admin;
  const zone = (await ok(api, 'POST', '/v1/zones', { name: `kvm-zone-${lab.tag}` })).resourceUuid;
  const cluster = (
    await ok(api, 'POST', '/v1/clusters', {
      name: `kvm-cluster-${lab.tag}`,
      zoneUuid: zone,
      hypervisorType: 'kvm',
    })
  ).resourceUuid;
  const ps = (
    await ok(api, 'POST', '/v1/primary-storages', {
      name: `kvm-ps-${lab.tag}`,
      zoneUuid: zone,
      type: 'shared-mount',
      url: lab.subdir('primary'),
      capacity: 20 * GiB,
    })
  ).resourceUuid;
  await ok(api, 'POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, { clusterUuid: cluster });
  // the image's bytes come from our file server; a simulated backup storage keeps the record
  // (the agent backup storage is exercised on its own: it needs the agent's image routes)
  const bs = (
    await ok(api, 'POST', '/v1/backup-storages', {
      name: `kvm-bs-${lab.tag}`,
      type: 'simulator',
      url: `sim://kvm-bs-${lab.tag}`,
      capacity: 100 * GiB,
    })
  ).resourceUuid;
  await ok(api, 'POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: zone });
  const image = (
    await ok(api, 'POST', '/v1/images', {
      name: `guest-${lab.tag}`,
      url: imageUrl,
      format: 'qcow2',
      backupStorageUuid: bs,
      isPublic: true,
    })
  ).resourceUuid;
  const offering = (
    await ok(api, 'POST', '/v1/instance-offerings', { name: `tiny-${lab.tag}`, cpu: 1, memory: 256 * MiB })
  ).resourceUuid;
  return { zone, cluster, ps, bs, image, offering, hosts: new Map() };
}

/** The guest image and the URL the hosts fetch it from (with the sizes a simulated storage reads). */
export async function guestImageUrl(
  lab: KvmLab,
): Promise<{ url: string; server: Server; virtualSize: number }> {
  const guest = await ensureGuestImage();
  const info = JSON.parse(
    execFileSync('qemu-img', ['info', '--output=json', guest.disk], { encoding: 'utf8' }),
  ) as {
    'virtual-size': number;
  };
  const served = await serveFile(lab, guest.disk);
  const actual = statSync(guest.disk).size;
  return {
    url: `${served.url}?size=${info['virtual-size']}&actualSize=${actual}`,
    server: served.server,
    virtualSize: info['virtual-size'],
  };
}

export async function addHost(t: TestNode, cloud: Cloud, host: LabHost, secret: string): Promise<any> {
  const job = await t.admin.job('POST', '/v1/hosts', {
    name: `kvm-${host.prefix}`,
    clusterUuid: cloud.cluster,
    managementIp: host.ip,
    agentSecret: secret,
  });
  if (job.state === 'Succeeded') cloud.hosts.set(host, job.resourceUuid);
  return job;
}

/** a flat L3 (DHCP from our dnsmasq on each host) on a VXLAN L2 attached to the cluster */
export async function flatVxlanL3(t: TestNode, lab: KvmLab, cloud: Cloud, vni: number) {
  const api = t.admin;
  const pool = (
    await ok(api, 'POST', '/v1/vxlan-pools', {
      name: `pool-${lab.tag}`,
      zoneUuid: cloud.zone,
      vniStart: vni,
      vniEnd: vni + 9,
    })
  ).resourceUuid;
  const l2 = (
    await ok(api, 'POST', '/v1/l2-networks', {
      name: `vx-${lab.tag}`,
      zoneUuid: cloud.zone,
      type: 'vxlan',
      vxlanPoolUuid: pool,
      vni,
    })
  ).resourceUuid;
  await ok(api, 'POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: cloud.cluster });
  const subnet = `10.${180 + (lab.n % 50)}.${lab.n}`;
  const l3 = (
    await ok(api, 'POST', '/v1/l3-networks', {
      name: `flat-${lab.tag}`,
      l2NetworkUuid: l2,
      category: 'private',
      provider: 'flat',
      shared: true,
      mtu: 1400,
    })
  ).resourceUuid;
  await ok(api, 'POST', '/v1/ip-ranges', {
    name: `flat-range-${lab.tag}`,
    l3NetworkUuid: l3,
    startIp: `${subnet}.10`,
    endIp: `${subnet}.100`,
    prefixLength: 24,
    gateway: `${subnet}.1`,
  });
  return { pool, l2, l3, subnet };
}

export async function nicOf(api: Api, vmUuid: string): Promise<{ uuid: string; ip: string; mac: string }> {
  const res = await api.get(`/v1/vm-nics?q=vmUuid=${vmUuid}&sort=deviceId`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const nic = res.body.items[0];
  assert.ok(nic, `vm ${vmUuid} has a NIC`);
  return nic;
}

export async function vmOf(api: Api, vmUuid: string): Promise<any> {
  return (await api.get(`/v1/vms/${vmUuid}`)).body;
}

export function waitVmState(api: Api, vmUuid: string, state: string, timeoutMs = 120_000): Promise<any> {
  return waitFor(
    `vm ${vmUuid} ${state}`,
    async () => {
      const vm = await vmOf(api, vmUuid);
      return vm.state === state ? vm : undefined;
    },
    timeoutMs,
  );
}

/** waits for a marker in a VM's serial log (from character `from` on) */
export function waitSerial(host: LabHost, vmUuid: string, re: RegExp, from = 0, timeoutMs = 240_000) {
  return waitFor(
    `serial ${re} of ${vmUuid}`,
    () => host.serial(vmUuid).slice(from).match(re) ?? undefined,
    timeoutMs,
  );
}
