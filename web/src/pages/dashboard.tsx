/**
 * The dashboard: capacity of zones, clusters and hosts (admin), VMs by state, IP use per L3,
 * jobs finished per 10 s and the latest events — live: the event stream updates the job chart and
 * the event list, and any VM, host or network event refreshes the figures (at most once a second).
 */
import { Card, Group, Progress, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { get, type ListPage, listPath } from '../api/client';
import { type Capacity, useCapacity, useL3Usage, useVmStates } from '../api/dashboard';
import { subscribeEvents } from '../api/events';
import { useSession } from '../api/session';
import type { CloudEvent } from '../api/types';
import { EChart } from '../components/echart';
import { LiveJobsChart } from '../components/live-jobs-chart';
import { bytes, gib, percent, when } from '../format';

const REFRESHING = new Set([
  'vms',
  'hosts',
  'l3-networks',
  'ip-ranges',
  'primary-storages',
  'zones',
  'clusters',
]);

function useLiveRefresh() {
  const queries = useQueryClient();
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = subscribeEvents((e) => {
      if (!REFRESHING.has(e.resourceKind) || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void queries.invalidateQueries({ queryKey: ['dashboard'] });
      }, 1000);
    });
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [queries]);
}

function Stat({ label, value, id }: { label: string; value: string | number; id: string }) {
  return (
    <Card withBorder>
      <Text size="sm" c="dimmed">
        {label}
      </Text>
      <Text size="xl" fw={700} data-testid={id}>
        {value}
      </Text>
    </Card>
  );
}

function CapacityTable({ rows, caption }: { rows: (Capacity & { status?: string })[]; caption: string }) {
  return (
    <Table withTableBorder striped data-testid={`capacity-${caption}`}>
      <Table.Caption>
        {caption === 'host'
          ? 'the 10 hosts with the most memory allocated'
          : `${caption}: CPUs allocated to VMs of those its hosts have; memory in GiB`}
      </Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>{caption}</Table.Th>
          <Table.Th>{caption === 'host' ? 'status' : 'hosts (connected)'}</Table.Th>
          <Table.Th>CPU used / total</Table.Th>
          <Table.Th>memory used / free / total GiB</Table.Th>
          <Table.Th w={160}>memory used</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((r) => (
          <Table.Tr key={r.uuid} data-name={r.name}>
            <Table.Td>{r.name}</Table.Td>
            <Table.Td>{r.status ?? `${r.hosts} (${r.connected})`}</Table.Td>
            <Table.Td data-cell="cpu">
              {r.cpuUsed} / {r.cpuTotal}
            </Table.Td>
            <Table.Td data-cell="memory">
              {gib(r.memoryUsed)} / {gib(r.memoryTotal - r.memoryUsed)} / {gib(r.memoryTotal)}
            </Table.Td>
            <Table.Td>
              <Progress value={percent(r.memoryUsed, r.memoryTotal)} aria-label={`${r.name} memory used`} />
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function RecentEvents() {
  const seed = useQuery({
    queryKey: ['dashboard', 'events'],
    queryFn: () => get<ListPage<CloudEvent>>(listPath('events', { sort: '-id', limit: 15 })),
  });
  const [live, setLive] = useState<CloudEvent[]>([]);
  useEffect(() => subscribeEvents((e) => setLive((l) => [e, ...l].slice(0, 15))), []);
  const shown = useMemo(() => {
    const byId = new Map<string, CloudEvent>();
    for (const e of [...live, ...(seed.data?.items ?? [])]) byId.set(e.id, e);
    return [...byId.values()].sort((a, b) => Number(BigInt(b.id) - BigInt(a.id))).slice(0, 15);
  }, [live, seed.data]);
  return (
    <Table data-testid="recent-events">
      <Table.Tbody>
        {shown.map((e) => (
          <Table.Tr key={e.id}>
            <Table.Td ff="monospace" fz="sm">
              {e.type}
            </Table.Td>
            <Table.Td fz="sm">{e.resourceKind}</Table.Td>
            <Table.Td fz="sm">{when(e.at)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function DashboardPage() {
  const isAdmin = useSession()?.isAdmin ?? false;
  useLiveRefresh();
  const capacity = useCapacity(isAdmin);
  const vmStates = useVmStates();
  const l3 = useL3Usage();
  const vmTotal = (vmStates.data ?? []).reduce((n, [, c]) => n + c, 0);
  const running = vmStates.data?.find(([s]) => s === 'Running')?.[1] ?? 0;
  const pie = useMemo(
    () => ({
      tooltip: { trigger: 'item' },
      legend: { bottom: 0 },
      series: [
        {
          type: 'pie',
          radius: ['40%', '70%'],
          data: (vmStates.data ?? []).map(([name, value]) => ({ name, value })),
        },
      ],
    }),
    [vmStates.data],
  );
  const cap = capacity.data;

  return (
    <Stack>
      <Title order={2}>Dashboard</Title>
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        {isAdmin && (
          <Stat
            label="Hosts connected"
            value={cap ? `${cap.total.connected} / ${cap.total.hosts}` : '…'}
            id="stat-hosts"
          />
        )}
        {isAdmin && (
          <Stat
            label="Memory free (GiB)"
            value={cap ? gib(cap.total.memoryTotal - cap.total.memoryUsed) : '…'}
            id="stat-memory-free"
          />
        )}
        <Stat label="VMs" value={vmStates.data ? vmTotal : '…'} id="stat-vms" />
        <Stat label="VMs running" value={vmStates.data ? running : '…'} id="stat-vms-running" />
      </SimpleGrid>
      {isAdmin && cap && (
        <Card withBorder>
          <Title order={3} size="h4" mb="sm">
            Capacity
          </Title>
          <Stack>
            <CapacityTable rows={cap.zones} caption="zone" />
            <CapacityTable rows={cap.clusters} caption="cluster" />
            <CapacityTable rows={cap.hosts} caption="host" />
            <Table withTableBorder data-testid="capacity-storage">
              <Table.Caption>primary storage</Table.Caption>
              <Table.Tbody>
                {cap.storages.map((s) => (
                  <Table.Tr key={s.uuid}>
                    <Table.Td>{s.name}</Table.Td>
                    <Table.Td>{s.type}</Table.Td>
                    <Table.Td>
                      {bytes(s.capacityUsed)} used · {bytes(s.capacityAvailable)} available ·{' '}
                      {bytes(s.capacityTotal)} total
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Stack>
        </Card>
      )}
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Card withBorder>
          <Title order={3} size="h4">
            VMs by state
          </Title>
          <EChart
            option={pie}
            label={`VMs by state: ${(vmStates.data ?? []).map(([s, n]) => `${s} ${n}`).join(', ')}`}
          />
          <Group gap="md" data-testid="vm-states">
            {(vmStates.data ?? []).map(([s, n]) => (
              <Text key={s} size="sm" data-state={s}>
                {s}: <b>{n}</b>
              </Text>
            ))}
          </Group>
        </Card>
        <Card withBorder>
          <Title order={3} size="h4">
            Jobs finished (live)
          </Title>
          <LiveJobsChart />
        </Card>
        <Card withBorder>
          <Title order={3} size="h4" mb="sm">
            IP addresses per L3 network
          </Title>
          <Table data-testid="l3-usage">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>network</Table.Th>
                <Table.Th>used / total</Table.Th>
                <Table.Th>free</Table.Th>
                <Table.Th w={140} />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(l3.data?.items ?? []).map((n) => (
                <Table.Tr key={n.uuid} data-name={n.name}>
                  <Table.Td>{n.name}</Table.Td>
                  <Table.Td>
                    {n.ipUsed} / {n.ipTotal}
                  </Table.Td>
                  <Table.Td>{n.ipFree}</Table.Td>
                  <Table.Td>
                    <Progress value={percent(n.ipUsed, n.ipTotal)} aria-label={`${n.name} addresses used`} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Card>
        <Card withBorder>
          <Title order={3} size="h4">
            Recent events
          </Title>
          <RecentEvents />
        </Card>
      </SimpleGrid>
    </Stack>
  );
}
