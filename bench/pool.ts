/**
 * npm run bench:pool -- [--users 100] [--warm 100] [--hosts 20]
 *   [--node-args="--cpu-prof --cpu-prof-dir=prof"]  (flags for the server's node process)
 *
 * Self-service pools on simulated hosts: how long a pool takes to fill its warm stock (refill
 * rate), the latency of N users each taking a VM at once (allocate with ?wait=true: the answer
 * carries the VM and its address), beside references measured in the same run just before (N
 * concurrent GET /v1/auth/whoami, N concurrent reads of the pool: the machine is shared, so the
 * ratio is the figure to compare across runs), and how long the drained pool takes to be back at
 * its warm target.
 */
import { ADMIN_PASSWORD, Client, flags, machine, ms, percentiles, startServer } from './lib.js';

const f = flags({
  users: { type: 'string', default: '100' },
  warm: { type: 'string', default: '100' },
  hosts: { type: 'string', default: '20' },
  'node-args': { type: 'string' },
});
const USERS = Number(f.users);
const WARM = Number(f.warm);
const HOSTS = Number(f.hosts);
const GiB = 1024 ** 3;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

async function waitReady(api: Client, pool: string, ready: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const p = await api.call('GET', `/v1/pools/${pool}`);
    if (p.body.ready >= ready) return (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const nodeArgs = ((f['node-args'] as string | undefined) ?? '').split(' ').filter(Boolean);
  const server = await startServer(
    [],
    { NIMBUS_SETTINGS: JSON.stringify({ poolStockIntervalSeconds: 1 }) },
    nodeArgs,
  );
  try {
    const api = new Client(server.url);
    await api.login(ADMIN_PASSWORD);
    const zone = (await api.done('POST', '/v1/zones', { name: 'pz' })).resourceUuid;
    const cluster = (
      await api.done('POST', '/v1/clusters', { name: 'pc', zoneUuid: zone, hypervisorType: 'simulator' })
    ).resourceUuid;
    await Promise.all(
      Array.from({ length: HOSTS }, (_, i) =>
        api.done('POST', '/v1/hosts', {
          name: `ph-${i}`,
          clusterUuid: cluster,
          managementIp: `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`,
          simulatorCpu: 64,
          simulatorMemory: 512 * GiB,
        }),
      ),
    );
    const bs = (
      await api.done('POST', '/v1/backup-storages', {
        name: 'pbs',
        type: 'simulator',
        url: 'sim://pbs',
        capacity: 1024 * GiB,
      })
    ).resourceUuid;
    await api.done('POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: zone });
    const ps = (
      await api.done('POST', '/v1/primary-storages', {
        name: 'pps',
        zoneUuid: zone,
        type: 'local',
        url: '/var/lib/nimbus/p',
        capacity: 64 * 1024 * GiB,
      })
    ).resourceUuid;
    await api.done('POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, { clusterUuid: cluster });
    const image = (
      await api.done('POST', '/v1/images', {
        name: 'pimg',
        url: `http://images.example/p.qcow2?size=${2 * GiB}`,
        format: 'qcow2',
        backupStorageUuid: bs,
        isPublic: true,
      })
    ).resourceUuid;
    const offering = (
      await api.done('POST', '/v1/instance-offerings', { name: 'psmall', cpu: 1, memory: GiB })
    ).resourceUuid;
    const l2 = (
      await api.done('POST', '/v1/l2-networks', {
        name: 'pl2',
        zoneUuid: zone,
        type: 'no-vlan',
        physicalInterface: 'eth0',
      })
    ).resourceUuid;
    await api.done('POST', `/v1/l2-networks/${l2}/actions/attach-cluster`, { clusterUuid: cluster });
    const l3 = (
      await api.done('POST', '/v1/l3-networks', {
        name: 'pl3',
        l2NetworkUuid: l2,
        category: 'private',
        provider: 'flat',
        shared: true,
      })
    ).resourceUuid;
    await api.done('POST', '/v1/ip-ranges', { name: 'pr', l3NetworkUuid: l3, cidr: '10.200.0.0/20' });
    const tenant = (await api.done('POST', '/v1/accounts', { name: 'pdev', password: 'pdev-password' }))
      .resourceUuid;
    const quota = await api.call('PATCH', `/v1/quotas/${tenant}`, {
      'vm.num': 10 * USERS,
      'vm.cpu': 10 * USERS,
      'vm.memory': 10 * USERS * GiB,
      'volume.capacity': 100 * USERS * GiB,
    });
    if (quota.status >= 300) throw new Error(`quota: ${JSON.stringify(quota.body)}`);
    const users: Client[] = [];
    for (let i = 0; i < USERS; i += 20) {
      const names = Array.from({ length: Math.min(20, USERS - i) }, (_, k) => `pu-${i + k}`);
      await Promise.all(
        names.map((name) =>
          api.done('POST', '/v1/users', { name, password: `${name}-password`, accountUuid: tenant }),
        ),
      );
      for (const name of names) {
        const c = new Client(server.url);
        const res = await c.call('POST', '/v1/auth/login', {
          account: 'pdev',
          user: name,
          password: `${name}-password`,
        });
        c.token = res.body.token;
        users.push(c);
      }
    }

    const pool = (
      await api.done('POST', '/v1/pools', {
        name: 'bench-pool',
        imageUuid: image,
        instanceOfferingUuid: offering,
        l3NetworkUuids: [l3],
        warmTarget: WARM,
        cap: WARM + USERS,
        perUserLimit: 1,
        shared: true,
      })
    ).resourceUuid;
    const fill = await waitReady(api, pool, WARM);

    // references, the same number of concurrent requests just before: a trivial authenticated GET
    // (the HTTP and token path, no query), and a read of the pool (what an allocate reads first)
    const whoami = await Promise.all(users.map((u) => timed(() => u.call('GET', '/v1/auth/whoami'))));
    const reads = await Promise.all(users.map((u) => timed(() => u.call('GET', `/v1/pools/${pool}`))));
    const allocations = await Promise.all(
      users.map((u) =>
        timed(() => u.call('POST', `/v1/pools/${pool}/actions/allocate?wait=true`, { leaseSeconds: 86400 })),
      ),
    );
    const failed = allocations.filter(([, r]) => r.body?.state !== 'Succeeded');
    const vms = new Set(allocations.map(([, r]) => r.body?.result?.vm?.uuid));
    const refill = await waitReady(api, pool, Math.min(WARM, USERS));

    const a = percentiles(allocations.map(([t]) => t));
    const r = percentiles(reads.map(([t]) => t));
    const w = percentiles(whoami.map(([t]) => t));
    console.log(`machine: ${machine()}`);
    console.log(
      `pool of ${WARM} warm VMs on ${HOSTS} simulated hosts; ${USERS} users, one allocation each, all at once`,
    );
    console.log(`fill ${WARM} warm VMs from empty: ${fill.toFixed(1)} s (${(WARM / fill).toFixed(1)} VMs/s)`);
    console.log(
      `allocate (wait=true, VM + address in the answer): p50 ${ms(a.p50)}, p95 ${ms(a.p95)}, p99 ${ms(a.p99)}, max ${ms(a.max)}; ${failed.length} failed; ${vms.size} distinct VMs`,
    );
    console.log(`reference, ${USERS} concurrent GET /v1/auth/whoami: p50 ${ms(w.p50)}, p99 ${ms(w.p99)}`);
    console.log(`reference, ${USERS} concurrent GET of the pool: p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`);
    console.log(
      `allocate p99 / whoami p99: ${(a.p99 / w.p99).toFixed(1)}; / pool GET p99: ${(a.p99 / r.p99).toFixed(1)}`,
    );
    console.log(`drained pool back to ${Math.min(WARM, USERS)} ready: ${refill.toFixed(1)} s`);
    if (failed.length > 0) console.log(`first failure: ${JSON.stringify(failed[0]?.[1].body)}`);
  } finally {
    await server.stop();
  }
}

await main();
