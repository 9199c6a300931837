/**
 * npm run bench:vm-create -- --vms N --hosts H --concurrency C [--nics K] [--url U --password P]
 *   [--cold-connections] [--node-args="--cpu-prof --cpu-prof-dir=prof"]  (flags for the server's node process)
 *
 * Starts a fresh server (or targets --url), creates H simulated hosts with local storage, an
 * image and an offering — and with --nics K (default 0, as the earlier runs), K no-vlan L2s
 * attached to the cluster, each with a flat L3 whose /16 has room for every VM — fires N VM
 * creates (K NICs each) through the HTTP API with C in flight, waits for all jobs, prints
 * accepted/succeeded/failed, wall time, VMs/s, accept and completion latency percentiles, and
 * checks the invariants in the database (capacity; with NICs also: no duplicate IP, every NIC
 * holding its address row, NICs on their VMs' hosts).
 *
 * Connections: before the timed burst the client opens its C keep-alive HTTP connections (one
 * GET /v1/health on each), as long-lived clients or a load balancer in front of a management
 * node hold them, so accept latency measures the API, not TCP set-up. --cold-connections skips
 * that: C brand-new connections then arrive in the same instant as the burst (on this 2-core
 * machine their set-up, interleaved with the first admissions, costs the first second ~0.5 s).
 */
import pg from 'pg';
import { ADMIN_PASSWORD, Client, flags, machine, ms, percentiles, pool, startServer } from './lib.js';

const f = flags({
  vms: { type: 'string', default: '1000' },
  hosts: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '100' },
  nics: { type: 'string', default: '0' },
  url: { type: 'string' },
  password: { type: 'string' },
  'database-url': { type: 'string' },
  'node-args': { type: 'string' },
  'cold-connections': { type: 'boolean', default: false },
});
const N = Number(f.vms);
const H = Number(f.hosts);
const C = Number(f.concurrency);
const K = Number(f.nics);
const GiB = 1024 ** 3;

async function setup(api: Client): Promise<{ image: string; offering: string; l3s: string[] }> {
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
  console.log(
    `setup: ${H} hosts, local storage, image, offering${K ? `, ${K} flat L3(s)` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return { image, offering, l3s };
}

/** `12@3s 40@4s`: how many of the times fall in each whole second */
function bySecond(times: number[]): string {
  const counts = new Map<number, number>();
  for (const t of times) counts.set(Math.floor(t), (counts.get(Math.floor(t)) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${n}@${s}s`)
    .join(' ');
}

async function main(): Promise<void> {
  const nodeArgs = ((f['node-args'] as string | undefined) ?? '').split(' ').filter(Boolean);
  const server = f.url ? undefined : await startServer([], {}, nodeArgs);
  const url = (f.url as string | undefined) ?? server!.url;
  const databaseUrl = (f['database-url'] as string | undefined) ?? server?.databaseUrl;
  const api = new Client(url);
  await api.login((f.password as string | undefined) ?? ADMIN_PASSWORD);
  try {
    const { image, offering, l3s } = await setup(api);
    if (!f['cold-connections']) await pool(C, C, () => api.call('GET', '/v1/health'));
    console.log(`firing ${N} VM creates${K ? ` with ${K} NIC(s) each` : ''}, ${C} in flight …`);
    const accept: number[] = [];
    const slow: number[] = []; // when (s after the first call) each call slower than 1 s was sent
    const jobs: string[] = [];
    let refused = 0;
    const start = Date.now();
    const t0 = performance.now();
    await pool(N, C, async (i) => {
      const t = performance.now();
      const res = await api.call('POST', '/v1/vms', {
        name: `bench-vm-${i}`,
        imageUuid: image,
        instanceOfferingUuid: offering,
        ...(K ? { l3NetworkUuids: l3s } : {}),
      });
      accept.push(performance.now() - t);
      if (performance.now() - t > 1000) slow.push((t - t0) / 1000);
      if (res.status === 202) jobs.push(res.body.uuid);
      else {
        refused++;
        if (refused <= 3) console.error(`refused: ${res.status} ${JSON.stringify(res.body)}`);
      }
    });
    const acceptedAt = Date.now();
    for (;;) {
      const open = await api.call(
        'GET',
        '/v1/jobs?q=kind=vm.create&q=state?=Pending,Running&count=true&limit=0',
      );
      if (open.body.total === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const wall = (Date.now() - start) / 1000;
    if (!databaseUrl) {
      console.log('(no --database-url: job latencies and invariants need database access)');
      return;
    }
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const rows = (
      await db.query<{ state: string; ms: number }>(
        `select state, extract(epoch from (finished_at - created_at)) * 1000 as ms from jobs where kind = 'vm.create'`,
      )
    ).rows;
    const ok = rows.filter((r) => r.state === 'Succeeded');
    const failed = rows.filter((r) => r.state !== 'Succeeded');
    const firstErrors = await db.query(
      `select error->>'code' as code, count(*)::int as n from jobs where kind = 'vm.create' and state <> 'Succeeded' group by 1`,
    );
    const a = percentiles(accept);
    const j = percentiles(rows.map((r) => Number(r.ms)));
    console.log(`
machine:     ${machine()}
command:     npm run bench:vm-create -- --vms ${N} --hosts ${H} --concurrency ${C}${K ? ` --nics ${K}` : ''}${f['cold-connections'] ? ' --cold-connections' : ''}
accepted:    ${jobs.length} of ${N} (refused ${refused}) in ${((acceptedAt - start) / 1000).toFixed(1)} s
succeeded:   ${ok.length}    failed: ${failed.length} ${firstErrors.rows.map((r) => `${r.code}×${r.n}`).join(' ')}
wall time:   ${wall.toFixed(1)} s    → ${(ok.length / wall).toFixed(0)} VMs/s
accept:      p50 ${ms(a.p50)}  p95 ${ms(a.p95)}  p99 ${ms(a.p99)}  max ${ms(a.max)}
accept > 1s: ${slow.length} calls${slow.length ? `, by second sent: ${bySecond(slow)}` : ''}
completion:  p50 ${ms(j.p50)}  p95 ${ms(j.p95)}  p99 ${ms(j.p99)}  max ${ms(j.max)}`);
    await db.end();
    const { assertInvariants } = await import('../test/support/invariants.js');
    const { openDb } = await import('../src/db/pool.js');
    const h = openDb(databaseUrl, { max: 2 });
    try {
      await assertInvariants(h.db);
      console.log(
        `invariants:  all hold (host and storage capacity = sum of VMs/volumes, no transitional state, no running job${K ? '; no duplicate IP, every NIC holds its address, NICs on their hosts' : ''})`,
      );
    } catch (err) {
      console.log(`invariants VIOLATED: ${(err as Error).message}`);
      process.exitCode = 1;
    } finally {
      await h.close();
    }
  } finally {
    await server?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
