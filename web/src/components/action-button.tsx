/**
 * An action of a resource (or its delete) as a button: a confirmation dialog, with an input per
 * field of the action's body (from the contract), then the job's progress as it runs. A refusal
 * shows the API's message, and each field it names next to that field.
 */
import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useBodyForm } from '../api/body-form';
import { type Job, request } from '../api/client';
import { isDone, useJob } from '../api/jobs';
import type { Schema } from '../api/validate';
import { BodyFields, FormAlerts } from './body-fields';
import { JobProgress } from './job-progress';

export interface ActionSpec {
  kind: string;
  uuid: string;
  /** the resource's name, for the question the dialog asks */
  name: string;
  /** an action's name, or 'delete' */
  action: string;
  summary: string;
  body?: Schema;
  danger?: boolean;
}

export function ActionButton(spec: ActionSpec) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button
        size="xs"
        variant={spec.danger ? 'outline' : 'light'}
        color={spec.danger ? 'red' : undefined}
        onClick={() => setOpen(true)}
      >
        {spec.action}
      </Button>
      {open && <ActionDialog spec={spec} onClose={() => setOpen(false)} />}
    </>
  );
}

function ActionDialog({ spec, onClose }: { spec: ActionSpec; onClose: () => void }) {
  const queries = useQueryClient();
  const form = useBodyForm(spec.body);
  const [job, setJob] = useState<Job | null>(null);
  const [busy, setBusy] = useState(false);
  const followed = useJob(job?.uuid, job ?? undefined).data;

  useEffect(() => {
    if (followed && isDone(followed)) void queries.invalidateQueries({ queryKey: ['kind', spec.kind] });
  }, [followed, queries, spec.kind]);

  async function confirm() {
    setBusy(true);
    const path =
      spec.action === 'delete'
        ? `/v1/${spec.kind}/${spec.uuid}`
        : `/v1/${spec.kind}/${spec.uuid}/actions/${spec.action}`;
    const accepted = await form.submit((body) =>
      request<Job>(
        spec.action === 'delete' ? 'DELETE' : 'POST',
        path,
        spec.action === 'delete' ? undefined : body,
      ),
    );
    if (accepted) setJob(accepted);
    setBusy(false);
  }

  return (
    <Modal opened onClose={onClose} title={`${spec.action} ${spec.name}?`}>
      <Stack>
        <Text size="sm">{spec.summary}</Text>
        {!job && <BodyFields kind={spec.kind} schema={spec.body} form={form} />}
        <FormAlerts form={form} onScreen={Object.keys(spec.body?.properties ?? {})} />
        {job && <JobProgress job={job} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            {job ? 'Close' : 'Cancel'}
          </Button>
          {!job && (
            <Button color={spec.danger ? 'red' : undefined} loading={busy} onClick={confirm}>
              {spec.action}
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}
