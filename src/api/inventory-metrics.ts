/**
 * Inventory gauges at /metrics, cluster-wide, from the database: VMs by state, host capacity used
 * and in total by cluster, IP addresses used and in total by L3 network, jobs by kind and state.
 * Invariants: one round trip (four aggregate statements) at most every `cacheSeconds`, however
 * often and however many scrapers scrape; a scrape never waits on it for more than `waitMs`, and
 * then shows the last snapshot (its age is a gauge), so /metrics answers fast under any load and
 * while the database is away.
 */
import { Gauge, type Registry } from 'prom-client';

export interface InventorySnapshot {
  vms: Array<{ state: string; n: number }>;
  hosts: Array<{
    cluster: string;
    hosts: number;
    cpuUsed: number;
    cpuTotal: number;
    memoryUsed: number;
    memoryTotal: number;
  }>;
  l3s: Array<{ uuid: string; name: string; used: number; total: number }>;
  jobs: Array<{ kind: string; state: string; n: number }>;
}

/** The statements, in the order of InventorySnapshot's fields; counts cast so pg returns numbers. */
export const INVENTORY_SQL = `
select state, count(*)::int as n from vms group by state;
select cluster_uuid as cluster, count(*)::int as hosts,
       coalesce(sum(cpu_used), 0)::float8 as "cpuUsed", coalesce(sum(cpu_total), 0)::float8 as "cpuTotal",
       coalesce(sum(memory_used), 0)::float8 as "memoryUsed", coalesce(sum(memory_total), 0)::float8 as "memoryTotal"
  from hosts group by cluster_uuid;
select uuid, name, ip_used::float8 as used, ip_total::float8 as total from l3_networks_with_capacity;
select kind, state, count(*)::int as n from jobs group by kind, state`;

export type InventorySource = () => Promise<InventorySnapshot>;

/** The snapshot, refreshed by one caller at a time and at most every `cacheSeconds`. */
export class Inventory {
  private snapshot: { at: number; data: InventorySnapshot } | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly source: InventorySource,
    private readonly cacheSeconds: number,
    private readonly waitMs = 500,
  ) {}

  async read(): Promise<{ data: InventorySnapshot; ageSeconds: number } | undefined> {
    const fresh = this.snapshot && Date.now() - this.snapshot.at < this.cacheSeconds * 1000;
    if (!fresh) {
      this.refreshing ??= this.source()
        .then((data) => {
          this.snapshot = { at: Date.now(), data };
        })
        .catch(() => {}) // the last snapshot stays; its age tells the operator
        .finally(() => {
          this.refreshing = undefined;
        });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.refreshing, new Promise((r) => (timer = setTimeout(r, this.waitMs)))]);
      clearTimeout(timer);
    }
    if (!this.snapshot) return undefined;
    return { data: this.snapshot.data, ageSeconds: (Date.now() - this.snapshot.at) / 1000 };
  }
}

/** Reads the snapshot from the database with INVENTORY_SQL. */
export function inventoryFromRows(rows: Array<Array<Record<string, unknown>>>): InventorySnapshot {
  const [vms = [], hosts = [], l3s = [], jobs = []] = rows;
  return {
    vms: vms as InventorySnapshot['vms'],
    hosts: hosts as InventorySnapshot['hosts'],
    l3s: l3s as InventorySnapshot['l3s'],
    jobs: jobs as InventorySnapshot['jobs'],
  };
}

/** Registers the inventory gauges; each scrape reads the (cached) snapshot once per gauge. */
export function registerInventoryGauges(registry: Registry, inventory: Inventory): void {
  const registers = [registry];
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, s: InventorySnapshot) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const snap = await inventory.read();
        this.reset();
        if (snap) fill(this, snap.data);
      },
    });

  new Gauge({
    name: 'nimbus_inventory_age_seconds',
    help: 'age of the inventory snapshot the inventory gauges show (-1: none read yet)',
    registers,
    async collect() {
      const snap = await inventory.read();
      this.set(snap ? snap.ageSeconds : -1);
    },
  });
  gauge('nimbus_vms', 'VMs by state (all nodes)', ['state'], (g, s) => {
    for (const r of s.vms) g.set({ state: r.state }, r.n);
  });
  gauge('nimbus_hosts', 'hosts by cluster', ['cluster'], (g, s) => {
    for (const r of s.hosts) g.set({ cluster: r.cluster }, r.hosts);
  });
  gauge('nimbus_host_cpus_used', 'vCPUs of the VMs placed on the hosts of a cluster', ['cluster'], (g, s) => {
    for (const r of s.hosts) g.set({ cluster: r.cluster }, r.cpuUsed);
  });
  gauge(
    'nimbus_host_cpus_capacity',
    'logical CPUs of the hosts of a cluster (placement allows this × settings.cpuOvercommit)',
    ['cluster'],
    (g, s) => {
      for (const r of s.hosts) g.set({ cluster: r.cluster }, r.cpuTotal);
    },
  );
  gauge('nimbus_host_memory_used_bytes', 'memory placed on the hosts of a cluster', ['cluster'], (g, s) => {
    for (const r of s.hosts) g.set({ cluster: r.cluster }, r.memoryUsed);
  });
  gauge('nimbus_host_memory_capacity_bytes', 'memory of the hosts of a cluster', ['cluster'], (g, s) => {
    for (const r of s.hosts) g.set({ cluster: r.cluster }, r.memoryTotal);
  });
  gauge('nimbus_l3_ips_used', 'IP addresses allocated on an L3 network', ['l3_network', 'name'], (g, s) => {
    for (const r of s.l3s) g.set({ l3_network: r.uuid, name: r.name }, r.used);
  });
  gauge(
    'nimbus_l3_ips_capacity',
    'IP addresses in the ranges of an L3 network',
    ['l3_network', 'name'],
    (g, s) => {
      for (const r of s.l3s) g.set({ l3_network: r.uuid, name: r.name }, r.total);
    },
  );
  gauge('nimbus_jobs', 'jobs by kind and state (all nodes, from the database)', ['kind', 'state'], (g, s) => {
    for (const r of s.jobs) g.set({ kind: r.kind, state: r.state }, r.n);
  });
  gauge(
    'nimbus_jobs_unfinished',
    'jobs not yet finished, by kind and state (from the database)',
    ['kind', 'state'],
    (g, s) => {
      for (const r of s.jobs)
        if (r.state === 'Pending' || r.state === 'Running') g.set({ kind: r.kind, state: r.state }, r.n);
    },
  );
}
