/**
 * The demo environment `npm start` creates on an empty database: one zone, one simulator
 * cluster, four simulated hosts; a simulated backup storage, local primary storage, a public
 * image and a disk offering; instance offerings `small` and `medium`; a shared flat public
 * network with addresses — so a VM with an IP can be created at once; and the shared self-service
 * pool `dev-small` (2 warm VMs), so a developer gets one with `nimbus pool allocate dev-small`. Built through the same services and chains as any API call.
 */
import type { Logger } from 'pino';
import type { Db } from './db/pool.js';
import type { JobRow } from './engine/jobs.js';
import type { Caller } from './kernel/caller.js';
import { CloudError } from './kernel/errors.js';
import { newId } from './kernel/ids.js';
import type { KindService, ServiceContext } from './resources/service.js';

export const DEMO_HOSTS = 4;

export async function createDemoEnvironment(
  ctx: ServiceContext,
  services: KindService[],
  adminAccountUuid: string,
  log: Logger,
): Promise<boolean> {
  const any = await ctx.db.selectFrom('zones').select('uuid').limit(1).executeTakeFirst();
  if (any) return false;
  const caller: Caller = {
    accountUuid: adminAccountUuid,
    userUuid: await adminUser(ctx.db, adminAccountUuid),
    isAdmin: true,
    requestId: `demo-${newId()}`,
  };
  const svc = (kind: string) => services.find((s) => s.contract.kind === kind)!;
  const done = async (job: Promise<JobRow>) => {
    const finished = await ctx.engine.waitFor((await job).uuid, 60_000);
    if (finished?.state !== 'Succeeded')
      throw new CloudError(
        'Internal',
        'DEMO_FAILED',
        `demo setup failed: ${JSON.stringify(finished?.error)}`,
      );
    return finished.resourceUuid!;
  };
  const zone = await done(svc('zones').create!(caller, { name: 'zone-1', description: 'demo zone' }));
  const cluster = await done(
    svc('clusters').create!(caller, {
      name: 'cluster-1',
      zoneUuid: zone,
      hypervisorType: 'simulator',
      description: 'demo cluster of simulated hosts',
    }),
  );
  await Promise.all(
    Array.from({ length: DEMO_HOSTS }, (_, i) =>
      done(
        svc('hosts').create!(caller, {
          name: `host-${i + 1}`,
          clusterUuid: cluster,
          managementIp: `192.168.100.${11 + i}`,
        }),
      ),
    ),
  );
  const storage = await createStorageDemo(
    (kind, body) => done(svc(kind).create!(caller, body)),
    (kind, uuid, action, body) => done(svc(kind).actions![action]!(caller, uuid, body)),
    zone,
    cluster,
  );
  const offerings = await createComputeDemo((kind, body) => done(svc(kind).create!(caller, body)));
  const network = await createNetworkDemo(
    (kind, body) => done(svc(kind).create!(caller, body)),
    (kind, uuid, action, body) => done(svc(kind).actions![action]!(caller, uuid, body)),
    zone,
    cluster,
    storage.backupStorage,
  );
  const pool = await done(
    svc('pools').create!(caller, {
      name: 'dev-small',
      description: 'small Linux boxes for development and tests (1 vCPU, 1 GiB, on public)',
      imageUuid: storage.image,
      instanceOfferingUuid: offerings.instanceOfferings[0],
      l3NetworkUuids: [network.l3Network],
      warmTarget: 2,
      cap: 10,
      shared: true,
    }),
  );
  log.info(
    { zone, cluster, hosts: DEMO_HOSTS, ...storage, ...offerings, ...network, pool },
    'demo environment created',
  );
  return true;
}

type Create = (kind: string, body: Record<string, unknown>) => Promise<string>;
type Act = (kind: string, uuid: string, action: string, body: Record<string, unknown>) => Promise<string>;

const GiB = 1024 ** 3;

/**
 * Storage of the demo: a simulated backup storage in zone-1, local primary storage (2 TiB per
 * host) on cluster-1, the public image ubuntu-22.04 (Ready) and the disk offering small-disk.
 */
async function createStorageDemo(create: Create, act: Act, zone: string, cluster: string) {
  const backupStorage = await create('backup-storages', {
    name: 'bs-1',
    type: 'simulator',
    url: 'sim://bs-1',
    description: 'demo backup storage (simulated, 1 TiB)',
  });
  await act('backup-storages', backupStorage, 'attach-zone', { zoneUuid: zone });
  const primaryStorage = await create('primary-storages', {
    name: 'local-1',
    zoneUuid: zone,
    type: 'local',
    url: '/var/lib/nimbus/local',
    capacity: 2 * 1024 * GiB,
    description: 'demo local storage: 2 TiB on each host',
  });
  await act('primary-storages', primaryStorage, 'attach-cluster', { clusterUuid: cluster });
  const image = await create('images', {
    name: 'ubuntu-22.04',
    url: 'http://images.example/ubuntu-22.04.qcow2?size=2361393152',
    format: 'qcow2',
    platform: 'Linux',
    guestOsType: 'ubuntu22.04',
    isPublic: true,
    backupStorageUuid: backupStorage,
  });
  const diskOffering = await create('disk-offerings', { name: 'small-disk', size: 20 * GiB });
  return { backupStorage, primaryStorage, image, diskOffering };
}

/** Compute of the demo: instance offerings small (1 vCPU, 1 GiB) and medium (2 vCPU, 4 GiB). */
async function createComputeDemo(create: Create) {
  const small = await create('instance-offerings', {
    name: 'small',
    cpu: 1,
    memory: GiB,
    description: '1 vCPU, 1 GiB',
  });
  const medium = await create('instance-offerings', {
    name: 'medium',
    cpu: 2,
    memory: 4 * GiB,
    description: '2 vCPU, 4 GiB',
  });
  return { instanceOfferings: [small, medium] };
}

/**
 * Network of the demo: the no-vlan L2 `l2-public` on eth0, attached to cluster-1, and the flat,
 * shared public L3 `public` (DNS 8.8.8.8) with 192.168.100.100–250/24, gateway .1 (the hosts are
 * .11–.14, outside it): `nimbus vm create … --l3 public` gets an address at once. For private
 * networks with a virtual router: the VLAN L2 `l2-vlan100` (eth1, VLAN 100) attached to
 * cluster-1, the router appliance image `vrouter` and the zone's default virtual-router offering
 * `vr-default` (its routers' uplink and management network: `public`).
 */
async function createNetworkDemo(create: Create, act: Act, zone: string, cluster: string, bs: string) {
  const l2 = await create('l2-networks', {
    name: 'l2-public',
    zoneUuid: zone,
    type: 'no-vlan',
    physicalInterface: 'eth0',
    description: 'demo L2: the hosts’ eth0',
  });
  await act('l2-networks', l2, 'attach-cluster', { clusterUuid: cluster });
  const l3 = await create('l3-networks', {
    name: 'public',
    l2NetworkUuid: l2,
    category: 'public',
    provider: 'flat',
    shared: true,
    dns: ['8.8.8.8'],
    description: 'demo public network: flat (DHCP on every host), usable by every account',
  });
  const range = await create('ip-ranges', {
    name: 'public-range',
    l3NetworkUuid: l3,
    startIp: '192.168.100.100',
    endIp: '192.168.100.250',
    prefixLength: 24,
    gateway: '192.168.100.1',
  });
  const vlan = await create('l2-networks', {
    name: 'l2-vlan100',
    zoneUuid: zone,
    type: 'vlan',
    physicalInterface: 'eth1',
    vlan: 100,
    description: 'demo L2 for private networks: VLAN 100 on the hosts’ eth1',
  });
  await act('l2-networks', vlan, 'attach-cluster', { clusterUuid: cluster });
  const routerImage = await create('images', {
    name: 'vrouter',
    url: 'http://images.example/vrouter.qcow2?size=536870912',
    format: 'qcow2',
    platform: 'Linux',
    description: 'demo virtual-router appliance image',
    backupStorageUuid: bs,
  });
  const routerOffering = await create('virtual-router-offerings', {
    name: 'vr-default',
    zoneUuid: zone,
    cpu: 1,
    memory: GiB / 2,
    imageUuid: routerImage,
    managementL3NetworkUuid: l3,
    publicL3NetworkUuid: l3,
    isDefault: true,
    description: 'demo virtual-router offering: uplink and management on `public`',
  });
  return { l2Network: l2, l3Network: l3, ipRange: range, vlanL2: vlan, routerImage, routerOffering };
}

async function adminUser(db: Db, accountUuid: string): Promise<string> {
  const row = await db
    .selectFrom('users')
    .select('uuid')
    .where('accountUuid', '=', accountUuid)
    .orderBy('createdAt')
    .limit(1)
    .executeTakeFirstOrThrow();
  return row.uuid;
}
