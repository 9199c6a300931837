/**
 * npm run bench:host-ha -- [--vms 10] [--hosts 4] [--interval 10] [--retry 5]
 *
 * Host HA on simulated hosts: a host carrying `--vms` VMs of HA level restart-on-host-failure
 * (on NFS) stops answering; the figure is the seconds from its last heartbeat (the last
 * reconcile pass it answered, `hosts.last_seen_at`) to every one of those VMs Running on another
 * host, with the steps in between (Disconnected after 3 missed passes of `--interval` seconds,
 * fenced, restarted). Beside it, measured in the same run: one ordinary stop + start of a VM
 * (what a restart costs without the detection). Figures only, no pass/fail.
 */
import pg from 'pg';
import { ADMIN_PASSWORD, Client, flags, machine, startServer } from './lib.js';

const f = flags({
  vms: { type: 'string', default: '10' },
  hosts: { type: 'string', default: '4' },
  interval: { type: 'string', default: '10' },
  retry: { type: 'string', default: '5' },
});
const VMS = Number(f.vms);
const HOSTS = Number(f.hosts);
const INTERVAL = Number(f.interval);
const GiB = 1024 ** 3;

const seconds = (from: Date, to: Date) => ((to.getTime() - from.getTime()) / 1000).toFixed(1);

async function build(api: Client) {
  const zone = (await api.done('POST', '/v1/zones', { name: 'hz' })).resourceUuid;
  const cluster = (
    await api.done('POST', '/v1/clusters', {
      name: 'hc',
      zoneUuid: zone,
      hypervisorType: 'simulator',
      hostHa: true,
    })
  ).resourceUuid;
  const hosts: string[] = [];
  for (let i = 0; i < HOSTS; i++)
    hosts.push(
      (
        await api.done('POST', '/v1/hosts', {
          name: `hh-${i}`,
          clusterUuid: cluster,
          managementIp: `10.78.0.${i + 1}`,
          simulatorCpu: 64,
          simulatorMemory: 256 * GiB,
        })
      ).resourceUuid,
    );
  const bs = (
    await api.done('POST', '/v1/backup-storages', {
      name: 'hbs',
      type: 'simulator',
      url: 'sim://hbs',
      capacity: 1024 * GiB,
    })
  ).resourceUuid;
  await api.done('POST', `/v1/backup-storages/${bs}/actions/attach-zone`, { zoneUuid: zone });
  const ps = (
    await api.done('POST', '/v1/primary-storages', {
      name: 'hps',
      zoneUuid: zone,
      type: 'nfs',
      url: 'nfs://10.78.1.1/ha',
      capacity: 64 * 1024 * GiB,
    })
  ).resourceUuid;
  await api.done('POST', `/v1/primary-storages/${ps}/actions/attach-cluster`, { clusterUuid: cluster });
  const image = (
    await api.done('POST', '/v1/images', {
      name: 'himg',
      url: `http://images.example/h.qcow2?size=${2 * GiB}`,
      format: 'qcow2',
      backupStorageUuid: bs,
      isPublic: true,
    })
  ).resourceUuid;
  const offering = (await api.done('POST', '/v1/instance-offerings', { name: 'hsmall', cpu: 1, memory: GiB }))
    .resourceUuid;
  return { hosts, image, offering };
}

async function main(): Promise<void> {
  const settings = { reconcileIntervalSeconds: INTERVAL, hostFenceRetrySeconds: Number(f.retry) };
  const server = await startServer([], { NIMBUS_SETTINGS: JSON.stringify(settings) });
  const db = new pg.Client({ connectionString: server.databaseUrl });
  await db.connect();
  try {
    const api = new Client(server.url);
    await api.login(ADMIN_PASSWORD);
    const { hosts, image, offering } = await build(api);
    const failed = hosts[0]!;
    const vm = (haLevel: string, hostUuid?: string) =>
      api.done('POST', '/v1/vms', {
        name: `hv-${Math.random().toString(36).slice(2, 8)}`,
        imageUuid: image,
        instanceOfferingUuid: offering,
        haLevel,
        ...(hostUuid ? { hostUuid } : {}),
      });
    const ha: string[] = [];
    for (let i = 0; i < VMS; i++) ha.push((await vm('restart-on-host-failure', failed)).resourceUuid);
    await vm('none', failed);

    // the reference: one ordinary stop + start, in this run
    const ref = (await vm('none', hosts[1])).resourceUuid;
    await api.done('POST', `/v1/vms/${ref}/actions/stop`, { force: true });
    const t0 = performance.now();
    await api.done('POST', `/v1/vms/${ref}/actions/start`, {});
    const startSeconds = (performance.now() - t0) / 1000;

    // wait for a pass that saw the host, then silence it
    const seen = async () =>
      (await db.query('select last_seen_at from hosts where uuid = $1', [failed])).rows[0]
        ?.last_seen_at as Date | null;
    const before = await seen();
    while ((await seen())?.getTime() === before?.getTime()) await new Promise((r) => setTimeout(r, 100));
    const res = await api.call('POST', '/v1/simulator/faults', {
      point: 'command:vm.list',
      host: '10.78.0.1',
      error: { code: 'HOST_UNREACHABLE' },
    });
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    const last = (await seen())!;

    let running = 0;
    for (;;) {
      const { rows } = await db.query(
        `select count(*)::int as n from vms where uuid = any($1) and state = 'Running' and host_uuid <> $2`,
        [ha, failed],
      );
      running = rows[0].n;
      if (running === ha.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const allRunning = new Date();
    const at = async (type: string, status = '') =>
      (
        await db.query(
          `select min(at) as t from events where resource_uuid = $1 and type = $2
             and ($3 = '' or data->>'status' = $3) and at >= $4`,
          [failed, type, status, last],
        )
      ).rows[0]?.t as Date;
    const disconnected = await at('host.status.changed', 'Disconnected');
    const fenced = await at('host.ha.fenced');
    console.log(`host HA on simulated hosts — ${machine()}`);
    console.log(
      `  ${VMS} HA VMs on the failed host, ${HOSTS} hosts, reconcile every ${INTERVAL} s (Disconnected after 3 missed passes)`,
    );
    console.log(`  last heartbeat → Disconnected:       ${seconds(last, disconnected)} s`);
    console.log(`  last heartbeat → fenced:             ${seconds(last, fenced)} s`);
    console.log(`  last heartbeat → all HA VMs Running: ${seconds(last, allRunning)} s (aim: within 60 s)`);
    console.log(`  fenced → all HA VMs Running:         ${seconds(fenced, allRunning)} s`);
    console.log(`  reference, one VM start in this run: ${startSeconds.toFixed(2)} s`);
  } finally {
    await db.end();
    await server.stop();
  }
}

await main();
