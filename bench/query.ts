/**
 * npm run bench:query -- [--vms 1000000] [--requests 200] [--concurrency 4]
 *
 * Fills a fresh database with N VMs (inserted with SQL: this measures queries, not creation)
 * spread over 10 clusters × 100 simulated hosts (running what the platform says: the
 * reconciler passes over them during the run and repairs nothing) and 5 accounts, then times,
 * through the HTTP API, the list
 * queries the clients really send: the CLI's `vm list` (default sort, first page) and its name
 * lookup (`q=name=…`, how every command resolves a name), the console's list sorted by a column
 * either way and its dashboard counts per state, a state filter, a host's VMs, a nested filter
 * across relations, a tenant's scoped lists, and a page deep in the list. Each line prints its
 * p50/p95/p99; the load average before and after says how shared the machine was.
 */
import pg from 'pg';
import { ADMIN_PASSWORD, Client, flags, machine, ms, percentiles, pool, startServer } from './lib.js';
import { loadAverage } from './proc-stats.js';

const f = flags({
  vms: { type: 'string', default: '1000000' },
  requests: { type: 'string', default: '200' },
  concurrency: { type: 'string', default: '4' },
});
const N = Number(f.vms);
const R = Number(f.requests);
const C = Number(f.concurrency);

async function fill(databaseUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const t0 = Date.now();
  await db.query(`
    with admin as (select uuid from accounts where name = 'admin')
    insert into zones (uuid, name, state, account_uuid) select gen_random_uuid(), 'qz', 'Enabled', uuid from admin;
    insert into clusters (uuid, name, zone_uuid, hypervisor_type, account_uuid)
      select gen_random_uuid(), 'qcluster-' || i, z.uuid, 'simulator', z.account_uuid from zones z, generate_series(0, 9) i;
    insert into hosts (uuid, name, zone_uuid, cluster_uuid, hypervisor_type, management_ip, status, cpu_total, memory_total, account_uuid)
      select gen_random_uuid(), c.name || '-host-' || i, c.zone_uuid, c.uuid, 'simulator',
             '10.' || substr(c.name, 10) || '.' || (i / 250) || '.' || (i % 250 + 1), 'Connected', 64, 274877906944, c.account_uuid
      from clusters c, generate_series(0, 99) i;
    -- a simulated machine behind every host, so the reconciler's passes during the run find them
    insert into simulator_hosts (address, cpu, memory) select management_ip, cpu_total, memory_total from hosts;
    insert into accounts (uuid, name, type) select gen_random_uuid(), 'qtenant-' || i, 'normal' from generate_series(0, 4) i;
  `);
  // the VMs and what their hosts run, in one transaction: the reconciler (every 30 s, over every
  // host) must never see the ones without the other, or it would "repair" them mid-run
  await db.query('begin');
  await db.query(
    `with h as (select uuid, cluster_uuid, zone_uuid, row_number() over () - 1 as n from hosts),
          a as (select uuid, row_number() over () - 1 as n from accounts where name like 'qtenant-%')
     insert into vms (uuid, name, account_uuid, zone_uuid, cluster_uuid, host_uuid, cpu, memory, state, power_state, created_at)
     select gen_random_uuid(), 'qvm-' || i, a.uuid, h.zone_uuid, h.cluster_uuid, h.uuid, 1 + i % 4, (1 + i % 8)::bigint * 1073741824,
            (array['Running','Running','Running','Stopped','Paused','Destroyed'])[1 + i % 6], 'Running',
            now() - (i || ' seconds')::interval
     from generate_series(0, $1::int - 1) i
     join h on h.n = i % (select count(*) from hosts)
     join a on a.n = i % 5`,
    [N],
  );
  await db.query(`
    insert into simulator_vms (vm_uuid, host_address, state, cpu, memory)
      select v.uuid, h.management_ip, v.state, v.cpu, v.memory from vms v join hosts h on h.uuid = v.host_uuid
      where v.state in ('Running', 'Paused')`);
  await db.query('commit');
  // what autovacuum does to a table this size within a minute or so: statistics and the
  // visibility map (index-only scans)
  await db.query('vacuum analyze');
  console.log(`filled ${N} VMs over 1000 hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await db.end();
}

async function main(): Promise<void> {
  const server = await startServer();
  try {
    await fill(server.databaseUrl);
    const api = new Client(server.url);
    await api.login(ADMIN_PASSWORD);
    const tenantPassword = 'bench-tenant-password';
    await api.done('POST', '/v1/users', {
      name: 'qreader',
      password: tenantPassword,
      accountUuid: (await api.call('GET', '/v1/accounts?q=name=qtenant-0')).body.items[0].uuid,
    });
    const tenant = new Client(server.url);
    const login = await tenant.call('POST', '/v1/auth/login', {
      account: 'qtenant-0',
      user: 'qreader',
      password: tenantPassword,
    });
    tenant.token = login.body.token;

    const host = (await api.call('GET', '/v1/hosts?q=name=qcluster-5-host-7')).body.items[0].uuid;
    const someVm = (await api.call('GET', '/v1/vms?limit=1')).body.items[0].uuid;
    const queries: Array<[string, Client, string]> = [
      // the reference, in the same run: a list request whose SQL is one primary-key lookup —
      // what auth, the query language and HTTP cost on this machine at this moment
      ['reference: one VM by uuid', api, `/v1/vms?q=uuid=${someVm}&limit=1`],
      ['CLI vm list (default sort)', api, '/v1/vms?limit=100'],
      ['name lookup (CLI)', api, `/v1/vms?q=name=qvm-${Math.floor(N / 2)}&limit=2`],
      ['newest first', api, '/v1/vms?sort=-createdAt&limit=100'],
      ['sorted by name', api, '/v1/vms?sort=name&limit=100'],
      ['sorted by name, descending', api, '/v1/vms?sort=-name&limit=100'],
      ['state filter, first page', api, '/v1/vms?q=state=Running&limit=100'],
      ['state filter, newest first', api, '/v1/vms?q=state=Stopped&sort=-createdAt&limit=100'],
      ["a host's VMs", api, `/v1/vms?q=hostUuid=${host}&limit=100`],
      ['nested: host.cluster.name', api, '/v1/vms?q=host.cluster.name=qcluster-3&limit=100'],
      [
        'nested + state + sort',
        api,
        '/v1/vms?q=host.cluster.name=qcluster-7&q=state=Running&sort=-createdAt&limit=100',
      ],
      ['tenant-scoped list', tenant, '/v1/vms?q=state=Stopped&limit=100'],
      ['tenant, newest first', tenant, '/v1/vms?sort=-createdAt&limit=100'],
      ['count of Running', api, '/v1/vms?q=state=Running&count=true&limit=0'],
      ['count of Paused (dashboard)', api, '/v1/vms?q=state=Paused&count=true&limit=0'],
      ['deep page (offset 50000)', api, '/v1/vms?sort=createdAt&limit=100&offset=50000'],
    ];
    console.log(
      `\nmachine: ${machine()}\ndate:    ${new Date().toISOString()}, load average ${loadAverage()}\ncommand: npm run bench:query -- --vms ${N} --requests ${R} --concurrency ${C}\n`,
    );
    for (const [label, client, path] of queries) {
      const first = await client.call('GET', path);
      if (first.status !== 200) throw new Error(`${path}: ${first.status} ${JSON.stringify(first.body)}`);
      const times = await pool(R, C, async () => {
        const t = performance.now();
        const res = await client.call('GET', path);
        if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
        return performance.now() - t;
      });
      const p = percentiles(times);
      const rows = first.body.total ?? first.body.items.length;
      console.log(
        `${label.padEnd(30)} p50 ${ms(p.p50).padStart(7)}  p95 ${ms(p.p95).padStart(7)}  p99 ${ms(p.p99).padStart(7)}   (${rows} rows)  ${path}`,
      );
    }
    console.log(`load average after: ${loadAverage()}`);
  } finally {
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
