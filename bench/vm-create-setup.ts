/**
 * The inventory a vm-create burst needs: H simulated hosts (64 cores, 256 GiB each) in one
 * cluster with local storage, a public image on a simulated backup storage, a 1-core 1 GiB
 * offering, and with `nics` K: K no-vlan L2s attached to the cluster, each with a flat L3 whose
 * /16 has room for every VM.
 */
import { type Client, pool } from './lib.js';

const GiB = 1024 ** 3;

export interface Inventory {
  zone: string;
  cluster: string;
  image: string;
  offering: string;
  l3s: string[];
  seconds: number;
}

export async function setup(api: Client, H: number, K: number): Promise<Inventory> {
  const t0 = Date.now();
  const zone = (await api.done('POST', '/v1/zones', { name: `bench-zone-${Date.now()}` })).resourceUuid;
  const cluster = (
    await api.done('POST', '/v1/clusters', {
      name: 'bench-cluster',
      zoneUuid: zone,
      hypervisorType: 'simulator',
    })
  ).resourceUuid;
  await pool(H, 50, (i) =>
    api.done('POST', '/v1/hosts', {
      name: `bench-host-${i}`,
      clusterUuid: cluster,
      managementIp: `10.${100 + Math.floor(i / 62500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`,
      simulatorCpu: 64,
      simulatorMemory: 256 * GiB,
    }),
  );
  const bs = (
    await api.done('POST', '/v1/backup-storages', {
      name: 'bench-bs',
      type: 'simulator',
      url: 'sim://bench-bs',
      capacity: 100 * 1024 * GiB,
    })
  ).resourceUuid;
  await api.done('POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: zone });
  const ps = (
    await api.done('POST', '/v1/primary-storages', {
      name: 'bench-local',
      zoneUuid: zone,
      type: 'local',
      url: 'file:///var/lib/nimbus',
      capacity: 4096 * GiB,
    })
  ).resourceUuid;
  await api.done('POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, { clusterUuid: cluster });
  const image = (
    await api.done('POST', '/v1/images', {
      name: 'bench-image',
      url: 'http://images.example/bench.qcow2?size=1073741824',
      format: 'qcow2',
      platform: 'Linux',
      backupStorageUuid: bs,
      isPublic: true,
    })
  ).resourceUuid;
  const offering = (
    await api.done('POST', '/v1/instance-offerings', { name: 'bench-small', cpu: 1, memory: GiB })
  ).resourceUuid;
  const l3s: string[] = [];
  for (let k = 0; k < K; k++) {
    const l2 = (
      await api.done('POST', '/v1/l2-networks', {
        name: `bench-l2-${k}`,
        zoneUuid: zone,
        type: 'no-vlan',
        physicalInterface: `eth${k}`,
      })
    ).resourceUuid;
    await api.done('POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: cluster });
    const l3 = (
      await api.done('POST', '/v1/l3-networks', {
        name: `bench-l3-${k}`,
        l2NetworkUuid: l2,
        category: 'private',
        provider: 'flat',
      })
    ).resourceUuid;
    // a /16: 65,533 addresses, room for any run of this benchmark
    await api.done('POST', '/v1/ip-ranges', {
      name: `bench-range-${k}`,
      l3NetworkUuid: l3,
      cidr: `10.${200 + k}.0.0/16`,
    });
    l3s.push(l3);
  }
  return { zone, cluster, image, offering, l3s, seconds: (Date.now() - t0) / 1000 };
}
