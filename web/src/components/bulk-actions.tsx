/**
 * Bulk actions on the rows ticked in a list: each action of the kind that needs no field (stop,
 * start, release…) and delete, as buttons; one confirmation names every resource it will touch,
 * then one request per resource is sent (four at a time) and each row shows its own outcome: its
 * job as it runs, or the API's refusal (code and message). Nothing is sent before the confirmation.
 */
import { Alert, Badge, Button, Group, Modal, Stack, Table, Text } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { actionsFor, title } from '../api/catalog';
import type { CatalogKind } from '../api/catalog-types';
import { ApiError, type Job, request } from '../api/client';
import { isDone, useJob } from '../api/jobs';
import { useSession } from '../api/session';

export interface Picked {
  uuid: string;
  name: string;
}

/**
 * Actions that can be sent as an empty body to many resources at once: every field of their body
 * optional and a yes/no (stop's force), so nothing is left for a person to choose per resource.
 */
export function bulkActions(k: CatalogKind, isAdmin: boolean): string[] {
  const names = actionsFor(k, isAdmin, true)
    .filter(([, a]) => {
      const body = a.body as { required?: string[]; properties?: Record<string, { type?: string }> };
      return (
        (body.required ?? []).length === 0 &&
        Object.values(body.properties ?? {}).every((f) => f.type === 'boolean')
      );
    })
    .map(([name]) => name);
  return k.deletable && (isAdmin || !k.adminOnly) ? [...names, 'delete'] : names;
}

type Outcome = { job: Job } | { error: ApiError };

export function BulkActions({ k, picked, onDone }: { k: CatalogKind; picked: Picked[]; onDone: () => void }) {
  const isAdmin = useSession()?.isAdmin ?? false;
  const [action, setAction] = useState<string | null>(null);
  const actions = bulkActions(k, isAdmin);
  if (actions.length === 0) return null;
  return (
    <Group gap="xs" role="group" aria-label="bulk actions">
      <Text size="sm">{picked.length} selected:</Text>
      {actions.map((a) => (
        <Button
          key={a}
          size="xs"
          variant={a === 'delete' ? 'outline' : 'light'}
          color={a === 'delete' ? 'red' : undefined}
          disabled={picked.length === 0}
          onClick={() => setAction(a)}
        >
          {a}
        </Button>
      ))}
      {action && (
        <BulkDialog
          k={k}
          action={action}
          picked={picked}
          onClose={() => {
            setAction(null);
            onDone();
          }}
        />
      )}
    </Group>
  );
}

function BulkDialog(p: { k: CatalogKind; action: string; picked: Picked[]; onClose: () => void }) {
  const queries = useQueryClient();
  const [outcomes, setOutcomes] = useState<Map<string, Outcome> | null>(null);
  const [busy, setBusy] = useState(false);
  const summary = p.action === 'delete' ? `delete these ${p.k.kind}` : p.k.actions?.[p.action]?.summary;

  async function confirm() {
    setBusy(true);
    const results = new Map<string, Outcome>();
    const queue = [...p.picked];
    const send = async (r: Picked) => {
      const path =
        p.action === 'delete' ? `/v1/${p.k.kind}/${r.uuid}` : `/v1/${p.k.kind}/${r.uuid}/actions/${p.action}`;
      try {
        const job = await request<Job>(
          p.action === 'delete' ? 'DELETE' : 'POST',
          path,
          p.action === 'delete' ? undefined : {},
        );
        results.set(r.uuid, { job });
      } catch (err) {
        results.set(r.uuid, {
          error: err instanceof ApiError ? err : new ApiError(0, 'CLIENT', 'Internal', String(err)),
        });
      }
      setOutcomes(new Map(results));
    };
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) await send(r);
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    setBusy(false);
    void queries.invalidateQueries({ queryKey: ['kind', p.k.kind] });
  }

  return (
    <Modal
      opened
      onClose={p.onClose}
      title={`${p.action} ${p.picked.length} ${p.picked.length === 1 ? p.k.singular : title(p.k)}?`}
      size="lg"
    >
      <Stack>
        {summary && <Text size="sm">{summary}</Text>}
        <Table data-testid="bulk-rows">
          <Table.Tbody>
            {p.picked.map((r) => (
              <Table.Tr key={r.uuid} data-name={r.name}>
                <Table.Td>{r.name}</Table.Td>
                <Table.Td>
                  <RowOutcome outcome={outcomes?.get(r.uuid)} kind={p.k.kind} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <Group justify="flex-end">
          <Button variant="default" onClick={p.onClose}>
            {outcomes ? 'Close' : 'Cancel'}
          </Button>
          {!outcomes && (
            <Button color={p.action === 'delete' ? 'red' : undefined} loading={busy} onClick={confirm}>
              {p.action} {p.picked.length}
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}

function RowOutcome({ outcome, kind }: { outcome: Outcome | undefined; kind: string }) {
  if (!outcome)
    return (
      <Text size="sm" c="dimmed">
        —
      </Text>
    );
  if ('error' in outcome)
    return (
      <Alert color="red" p={4} title={outcome.error.code} role="alert">
        <Text size="xs">{outcome.error.message}</Text>
      </Alert>
    );
  return <JobBadge job={outcome.job} kind={kind} />;
}

function JobBadge({ job, kind }: { job: Job; kind: string }) {
  const j = useJob(job.uuid, job).data ?? job;
  const queries = useQueryClient();
  const done = isDone(j);
  // the list behind the dialog shows the resource as the job left it
  useEffect(() => {
    if (done) void queries.invalidateQueries({ queryKey: ['kind', kind] });
  }, [done, kind, queries]);
  const color = j.state === 'Succeeded' ? 'green' : j.state === 'Failed' ? 'red' : 'blue';
  const error = j.error as { code?: string } | null;
  return (
    <Badge color={color} variant="light" data-job-state={j.state}>
      {j.state}
      {error?.code ? `: ${error.code}` : ''}
    </Badge>
  );
}
