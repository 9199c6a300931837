/**
 * The detail page of any resource: every field (with the contract's description on hover),
 * references by name with links, its actions and delete as buttons (see ActionButton), and its
 * recent jobs and events. It follows the event stream, so a state change shows without a reload.
 */
import {
  Alert,
  Anchor,
  Button,
  Card,
  Group,
  SimpleGrid,
  Stack,
  Table,
  Text,
  Title,
  Tooltip,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { Link, useParams } from 'react-router';
import { actionsFor, fieldDescription, hiddenFrom, kindOf, visibleKinds } from '../api/catalog';
import type { CatalogKind } from '../api/catalog-types';
import { ApiError, get, type Job, type ListPage, listPath } from '../api/client';
import { subscribeEvents } from '../api/events';
import { useNames } from '../api/names';
import { useSession } from '../api/session';
import type { CloudEvent, Resource } from '../api/types';
import { ActionButton } from '../components/action-button';
import { JobProgress } from '../components/job-progress';
import { referencedUuids, Value } from '../components/value';
import { VmSerialLog } from '../components/vm-serial-log';
import { when } from '../format';
import { NotFoundPage } from './not-found';

export function KindDetailPage() {
  const { kind = '', uuid = '' } = useParams();
  const session = useSession();
  const isAdmin = session?.isAdmin ?? false;
  const k = kindOf(kind);
  const visible = !!k && visibleKinds(isAdmin).includes(k);
  const queries = useQueryClient();
  const resource = useQuery({
    queryKey: ['kind', kind, uuid],
    queryFn: () => get<Resource>(`/v1/${kind}/${uuid}`),
    enabled: visible,
  });
  const jobs = useQuery({
    queryKey: ['kind', kind, uuid, 'jobs'],
    queryFn: () =>
      get<ListPage<Job>>(listPath('jobs', { q: [`resourceUuid=${uuid}`], sort: '-createdAt', limit: 10 })),
    enabled: visible && kind !== 'jobs',
  });
  const events = useQuery({
    queryKey: ['kind', kind, uuid, 'events'],
    queryFn: () =>
      get<ListPage<CloudEvent>>(listPath('events', { q: [`resourceUuid=${uuid}`], sort: '-id', limit: 10 })),
    enabled: visible && kind !== 'events',
  });

  // an event about this resource (its state moved, a job of it ended): read it again
  useEffect(() => {
    if (!visible) return;
    return subscribeEvents((e) => {
      if (e.resourceUuid === uuid || e.data.resourceUuid === uuid)
        void queries.invalidateQueries({ queryKey: ['kind', kind, uuid] });
    });
  }, [visible, kind, uuid, queries]);

  const row = resource.data;
  const fields = k ? shownFields(k, row, isAdmin) : [];
  const names = useNames(k && row ? referencedUuids(k, [row], fields) : {});
  if (!k || !visible) return <NotFoundPage what={`The page /${kind}/${uuid}`} />;
  if (resource.error)
    return resource.error instanceof ApiError && resource.error.status === 404 ? (
      <NotFoundPage what={`This ${k.singular}`} />
    ) : (
      <Alert color="red" role="alert">
        {resource.error.message}
      </Alert>
    );
  if (!row) return <Text>loading…</Text>;
  const name = typeof row.name === 'string' ? row.name : uuid;
  // a tenant changes only its own resources (a public image or a shared network is read-only to it)
  const owned = row.accountUuid === undefined || row.accountUuid === session?.accountUuid;
  const mayChange = isAdmin || (!k.adminOnly && owned);

  return (
    <Stack>
      <Group justify="space-between">
        <div>
          <Text size="sm" c="dimmed">
            <Anchor component={Link} to={`/${kind}`} underline="always">
              {k.kind}
            </Anchor>{' '}
            / {k.singular}
          </Text>
          <Title order={2}>{name}</Title>
        </div>
        <Group gap="xs" role="group" aria-label="actions">
          {kind === 'vms' && row.state === 'Running' && (
            <Button size="xs" variant="light" component={Link} to={`/console/${uuid}`}>
              console
            </Button>
          )}
          {actionsFor(k, isAdmin, owned).map(([action, a]) => (
            <ActionButton
              key={action}
              kind={kind}
              uuid={uuid}
              name={name}
              action={action}
              summary={a.summary}
              body={a.body}
            />
          ))}
          {k.deletable && mayChange && (
            <ActionButton
              kind={kind}
              uuid={uuid}
              name={name}
              action="delete"
              summary={`delete this ${k.singular}`}
              danger
            />
          )}
        </Group>
      </Group>
      {kind === 'jobs' && <JobProgress job={row as unknown as Job} />}
      <Table withTableBorder data-testid="detail-fields">
        <Table.Tbody>
          {fields.map((f) => (
            <Table.Tr key={f}>
              <Table.Th w={220}>
                <Tooltip label={fieldDescription(k, f) ?? f} disabled={!fieldDescription(k, f)}>
                  <span>{f}</span>
                </Tooltip>
              </Table.Th>
              <Table.Td data-field={f}>
                <Value k={k} field={f} value={row[f]} names={names} />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        {kind !== 'jobs' && (
          <Card withBorder>
            <Title order={3} size="h5" mb="xs">
              Jobs
            </Title>
            {(jobs.data?.items ?? []).map((j) => (
              <Group key={j.uuid} justify="space-between">
                <Anchor component={Link} to={`/jobs/${j.uuid}`} size="sm">
                  {j.kind}
                </Anchor>
                <Text size="sm">
                  {j.state} · {when(j.createdAt)}
                </Text>
              </Group>
            ))}
          </Card>
        )}
        {kind !== 'events' && (
          <Card withBorder>
            <Title order={3} size="h5" mb="xs">
              Events
            </Title>
            {(events.data?.items ?? []).map((e) => (
              <Group key={e.id} justify="space-between">
                <Text size="sm" ff="monospace">
                  {e.type}
                </Text>
                <Text size="sm">{when(e.at)}</Text>
              </Group>
            ))}
          </Card>
        )}
      </SimpleGrid>
      {kind === 'vms' && <VmSerialLog uuid={uuid} />}
    </Stack>
  );
}

/**
 * The contract's fields, in its order, then any the server added. A tenant is not shown
 * references to what it may not see (a VM's host and cluster).
 */
function shownFields(k: CatalogKind, row: Resource | undefined, isAdmin: boolean): string[] {
  const declared = Object.keys(k.resource.properties ?? {});
  const extra = row ? Object.keys(row).filter((f) => !declared.includes(f)) : [];
  return [...declared, ...extra].filter((f) => !hiddenFrom(k.kind, f, isAdmin));
}
