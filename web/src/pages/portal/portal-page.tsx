/**
 * `/portal`: self-service. Pick a purpose (a pool you may use: yours or shared), get a VM in one
 * click — `POST /v1/pools/{uuid}/actions/allocate` with a generated password, which the answer
 * shows once (`secrets.password`, never stored) — and see its address and login when the lease
 * job succeeds; below, your leases with the time left, renew and release (leases.tsx).
 */
import { Alert, Badge, Button, Card, Code, Group, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { Static } from 'typebox';
import type { leases, pools } from '../../../../src/contract/self-service.js';
import { ApiError, get, type Job, type ListPage, listPath, post } from '../../api/client';
import { subscribeEvents } from '../../api/events';
import { useJob } from '../../api/jobs';
import { JobProgress } from '../../components/job-progress';
import { MyLeases } from './leases';

export type Pool = Static<typeof pools.resource>;
export type Lease = Static<typeof leases.resource>;

export function PortalPage() {
  const queries = useQueryClient();
  const list = useQuery({
    queryKey: ['portal', 'pools'],
    queryFn: () => get<ListPage<Pool>>(listPath('pools', { q: ['state=Enabled'], sort: 'name', limit: 100 })),
  });
  // a pool's stock moves as VMs are handed out and made: read it again on its events
  useEffect(
    () =>
      subscribeEvents((e) => {
        if (e.resourceKind === 'pools' || e.resourceKind === 'leases')
          void queries.invalidateQueries({ queryKey: ['portal'] });
      }),
    [queries],
  );
  const [taken, setTaken] = useState<{ pool: Pool; job: Job } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  async function allocate(pool: Pool) {
    setBusy(pool.uuid);
    setError(null);
    try {
      const job = await post<Job>(`/v1/pools/${pool.uuid}/actions/allocate`, { password: true });
      setTaken({ pool, job });
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', 'Internal', String(err)));
    } finally {
      setBusy(null);
    }
  }

  const pools = list.data?.items ?? [];
  return (
    <Stack>
      <Title order={2}>Self-service</Title>
      <Text size="sm" c="dimmed">
        Pick what the VM is for: a ready one is yours at once, on a lease you can renew or release.
      </Text>
      {error && (
        <Alert color="red" title={error.code} role="alert" data-testid="portal-error">
          {error.message}
        </Alert>
      )}
      {list.isSuccess && pools.length === 0 && <Text>No pool is open to you.</Text>}
      <SimpleGrid cols={{ base: 1, md: 2, xl: 3 }}>
        {pools.map((p) => (
          <Card key={p.uuid} withBorder data-testid="portal-pool" data-pool={p.name}>
            <Group justify="space-between" mb="xs">
              <Title order={3} size="h4">
                {p.name}
              </Title>
              <Badge color={p.ready > 0 ? 'green' : 'gray'} variant="light">
                {p.ready} ready
              </Badge>
            </Group>
            <Text size="sm" mb="sm">
              {p.description ?? ''}
            </Text>
            <Text size="xs" c="dimmed" mb="sm">
              lease {Math.round(p.defaultLeaseSeconds / 86400)} d by default, up to{' '}
              {Math.round(p.maxLeaseSeconds / 86400)} d; {p.maxRenewals} renewals; {p.perUserLimit} per user
            </Text>
            <Button onClick={() => void allocate(p)} loading={busy === p.uuid} disabled={!!busy}>
              Get a VM
            </Button>
          </Card>
        ))}
      </SimpleGrid>
      {taken && <Handout pool={taken.pool} job={taken.job} />}
      <MyLeases />
    </Stack>
  );
}

/** The VM just taken: the lease job as it runs, then the address and the login (password shown once). */
function Handout({ pool, job }: { pool: Pool; job: Job }) {
  const followed = useJob(job.uuid, job).data ?? job;
  const lease = useQuery({
    queryKey: ['portal', 'lease', job.resourceUuid],
    enabled: followed.state === 'Succeeded' && !!job.resourceUuid,
    queryFn: () => get<Lease>(`/v1/leases/${job.resourceUuid}`),
  });
  const l = lease.data;
  return (
    <Card withBorder data-testid="portal-handout">
      <Title order={3} size="h5" mb="xs">
        A VM from {pool.name}
      </Title>
      <JobProgress job={job} />
      {l && (
        <Stack gap={4} mt="sm" data-testid="portal-login">
          <Text size="sm">
            Address: <Code data-testid="handout-ip">{l.floatingIp ?? l.ips[0] ?? '—'}</Code>
          </Text>
          <Text size="sm">
            Log in:{' '}
            <Code data-testid="handout-ssh">
              ssh {l.loginUser ?? 'dev'}@{l.floatingIp ?? l.ips[0]}
            </Code>
          </Text>
          {job.secrets?.password && (
            <Text size="sm">
              Password (shown once, not kept anywhere):{' '}
              <Code data-testid="handout-password">{job.secrets.password}</Code>
            </Text>
          )}
          <Text size="xs" c="dimmed">
            lease {l.name}, until {new Date(l.expiresAt).toLocaleString()}
          </Text>
        </Stack>
      )}
    </Card>
  );
}
