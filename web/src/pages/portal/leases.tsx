/**
 * My leases (this user's, not ended): the VM's address, the time left (ticking), renewals used,
 * and renew / release, each confirmed in a dialog that then shows its job (ActionButton).
 */
import { Anchor, Badge, Group, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { kindOf } from '../../api/catalog';
import { get, type ListPage, listPath } from '../../api/client';
import { useSession } from '../../api/session';
import { ActionButton } from '../../components/action-button';
import type { Lease } from './portal-page';

/** `3 d 4 h`, `2 h 5 min`, `45 s`; `expired` once past. */
export function timeLeft(until: string, now: number): string {
  const s = Math.floor((new Date(until).getTime() - now) / 1000);
  if (s <= 0) return 'expired';
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return m > 0 ? `${m} min` : `${s} s`;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

/**
 * The leases listed, plus those that left the list while the page was open (released, expired),
 * shown as Ended: the row, and the dialog that released it with its job, stay until the page closes.
 */
function useKeptEnded(items: Lease[] | undefined): Lease[] {
  const seen = useRef(new Map<string, Lease>());
  if (!items) return [...seen.current.values()];
  const live = new Set(items.map((l) => l.uuid));
  for (const [uuid, l] of seen.current) if (!live.has(uuid)) seen.current.set(uuid, { ...l, state: 'Ended' });
  for (const l of items) seen.current.set(l.uuid, l);
  return [...seen.current.values()];
}

export function MyLeases() {
  const session = useSession();
  const now = useNow(1000);
  const leases = useQuery({
    queryKey: ['portal', 'leases', session?.userUuid],
    queryFn: () =>
      get<ListPage<Lease>>(
        listPath('leases', {
          q: [`userUuid=${session?.userUuid}`, 'state?=Pending,Active,Stopped'],
          sort: 'expiresAt',
          limit: 100,
        }),
      ),
    enabled: !!session,
  });
  const k = kindOf('leases');
  const rows = useKeptEnded(leases.data?.items);
  return (
    <>
      <Title order={3} size="h4" mt="md">
        My leases
      </Title>
      {leases.isSuccess && rows.length === 0 && <Text size="sm">You hold no VM.</Text>}
      {rows.length > 0 && (
        <Table withTableBorder data-testid="my-leases">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>lease</Table.Th>
              <Table.Th>state</Table.Th>
              <Table.Th>address</Table.Th>
              <Table.Th>time left</Table.Th>
              <Table.Th>renewals</Table.Th>
              <Table.Th>actions</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((l) => (
              <Table.Tr key={l.uuid} data-lease={l.name}>
                <Table.Td>
                  <Anchor component={Link} to={`/leases/${l.uuid}`}>
                    {l.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  <Badge
                    variant="light"
                    color={l.state === 'Active' ? 'green' : l.state === 'Ended' ? 'gray' : 'orange'}
                    data-testid="lease-state"
                  >
                    {l.state}
                  </Badge>
                </Table.Td>
                <Table.Td>{l.floatingIp ?? l.ips.join(', ')}</Table.Td>
                <Table.Td data-cell="time-left" title={new Date(l.expiresAt).toLocaleString()}>
                  {l.state === 'Ended' ? '—' : timeLeft(l.expiresAt, now)}
                </Table.Td>
                <Table.Td>{l.renewals}</Table.Td>
                <Table.Td>
                  <Group gap="xs">
                    {(['renew', 'release'] as const).map((action) => (
                      <ActionButton
                        key={action}
                        kind="leases"
                        uuid={l.uuid}
                        name={l.name}
                        action={action}
                        summary={k?.actions?.[action]?.summary ?? action}
                        body={k?.actions?.[action]?.body}
                        danger={action === 'release'}
                      />
                    ))}
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </>
  );
}
