/** What the dashboard reads: capacity by zone and cluster from hosts, VM counts per state, IP use per L3. */
import { useQuery } from '@tanstack/react-query';
import { VM_STATES } from './catalog';
import { get, type ListPage, listPath } from './client';
import type { Cluster, Host, L3Network, PrimaryStorage, Zone } from './types';

export interface Capacity {
  name: string;
  uuid: string;
  hosts: number;
  connected: number;
  cpuUsed: number;
  cpuTotal: number;
  memoryUsed: number;
  memoryTotal: number;
}

function sum(name: string, uuid: string, hosts: Host[]): Capacity {
  return {
    name,
    uuid,
    hosts: hosts.length,
    connected: hosts.filter((h) => h.status === 'Connected').length,
    cpuUsed: hosts.reduce((n, h) => n + h.cpuUsed, 0),
    cpuTotal: hosts.reduce((n, h) => n + h.cpuTotal, 0),
    memoryUsed: hosts.reduce((n, h) => n + h.memoryUsed, 0),
    memoryTotal: hosts.reduce((n, h) => n + h.memoryTotal, 0),
  };
}

/** Every page of a list (the dashboard reads whole inventories of infrastructure, not VMs). */
async function all<T>(kind: string, fields?: string[]): Promise<T[]> {
  const out: T[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get<ListPage<T>>(
      listPath(kind, { limit: 1000, offset, ...(fields ? { fields } : {}) }),
    );
    out.push(...page.items);
    if (page.items.length < 1000) return out;
  }
}

export function useCapacity(enabled: boolean) {
  return useQuery({
    queryKey: ['dashboard', 'capacity'],
    enabled,
    queryFn: async () => {
      const [zones, clusters, hosts, storages] = await Promise.all([
        all<Zone>('zones', ['uuid', 'name']),
        all<Cluster>('clusters', ['uuid', 'name', 'zoneUuid']),
        all<Host>('hosts', [
          'uuid',
          'name',
          'zoneUuid',
          'clusterUuid',
          'status',
          'cpuUsed',
          'cpuTotal',
          'memoryUsed',
          'memoryTotal',
        ]),
        all<PrimaryStorage>('primary-storages'),
      ]);
      return {
        total: sum('all', '', hosts),
        zones: zones.map((z) =>
          sum(
            z.name,
            z.uuid,
            hosts.filter((h) => h.zoneUuid === z.uuid),
          ),
        ),
        clusters: clusters.map((c) =>
          sum(
            c.name,
            c.uuid,
            hosts.filter((h) => h.clusterUuid === c.uuid),
          ),
        ),
        // the fullest hosts first (by memory allocated, the usual limit), at most 10 rows
        hosts: hosts
          .map((h) => ({ ...sum(h.name, h.uuid, [h]), status: h.status }))
          .sort((a, b) => b.memoryUsed / (b.memoryTotal || 1) - a.memoryUsed / (a.memoryTotal || 1))
          .slice(0, 10),
        storages,
      };
    },
  });
}

/** One count per VM state (`count=true&limit=0` each): exact at any number of VMs. */
export function useVmStates() {
  return useQuery({
    queryKey: ['dashboard', 'vm-states'],
    queryFn: async () => {
      const counts = await Promise.all(
        VM_STATES.map(async (state) => {
          const page = await get<ListPage<unknown>>(
            listPath('vms', { q: [`state=${state}`], limit: 0, count: true }),
          );
          return [state, page.total ?? 0] as const;
        }),
      );
      return counts.filter(([, n]) => n > 0);
    },
  });
}

export function useL3Usage() {
  return useQuery({
    queryKey: ['dashboard', 'l3'],
    queryFn: () =>
      get<ListPage<L3Network>>(
        listPath('l3-networks', {
          fields: ['uuid', 'name', 'ipTotal', 'ipUsed', 'ipFree'],
          sort: 'name',
          limit: 100,
        }),
      ),
  });
}
