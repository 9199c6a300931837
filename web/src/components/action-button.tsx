/**
 * An action of a resource (or its delete) as a button: a confirmation dialog, with an input per
 * field of the action's body (from the contract), then the job's progress as it runs. A refusal
 * shows the API's message, and each field it names next to that field.
 */
import {
  Alert,
  Button,
  Checkbox,
  Group,
  Modal,
  NumberInput,
  Select,
  Stack,
  Text,
  TextInput,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { ApiError, type Job, request } from '../api/client';
import { isDone, useJob } from '../api/jobs';
import { JobProgress } from './job-progress';

interface FieldSchema {
  type?: string;
  enum?: string[];
  anyOf?: { const?: string }[];
  description?: string;
  'x-unit'?: string;
}
interface BodySchema {
  properties?: Record<string, FieldSchema>;
  required?: string[];
}

export interface ActionSpec {
  kind: string;
  uuid: string;
  /** the resource's name, for the question the dialog asks */
  name: string;
  /** an action's name, or 'delete' */
  action: string;
  summary: string;
  body?: BodySchema;
  danger?: boolean;
}

function enumOf(s: FieldSchema): string[] | undefined {
  if (s.enum) return s.enum;
  const consts = s.anyOf?.map((a) => a.const).filter((c): c is string => typeof c === 'string');
  return consts?.length ? consts : undefined;
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
  const props = Object.entries(spec.body?.properties ?? {});
  const required = new Set(spec.body?.required ?? []);
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [error, setError] = useState<ApiError | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [busy, setBusy] = useState(false);
  const followed = useJob(job?.uuid, job ?? undefined).data;

  useEffect(() => {
    if (followed && isDone(followed)) void queries.invalidateQueries({ queryKey: ['kind', spec.kind] });
  }, [followed, queries, spec.kind]);

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      const path =
        spec.action === 'delete'
          ? `/v1/${spec.kind}/${spec.uuid}`
          : `/v1/${spec.kind}/${spec.uuid}/actions/${spec.action}`;
      const body = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== '' && v !== undefined));
      setJob(
        await request<Job>(
          spec.action === 'delete' ? 'DELETE' : 'POST',
          path,
          spec.action === 'delete' ? undefined : body,
        ),
      );
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', 'Internal', String(err)));
    } finally {
      setBusy(false);
    }
  }

  // a 400 lists `details.fields`; a service's refusal may name one `details.field`
  const fieldErrors = new Map(
    ((error?.details.fields as { field: string; problem: string }[] | undefined) ?? []).map((f) => [
      f.field,
      f.problem,
    ]),
  );
  if (error && typeof error.details.field === 'string') fieldErrors.set(error.details.field, error.message);

  return (
    <Modal opened onClose={onClose} title={`${spec.action} ${spec.name}?`}>
      <Stack>
        <Text size="sm">{spec.summary}</Text>
        {!job &&
          props.map(([field, s]) => {
            const label = `${field}${s['x-unit'] === 'bytes' ? ' (bytes)' : ''}`;
            const err = fieldErrors.get(field);
            const options = enumOf(s);
            if (s.type === 'boolean')
              return (
                <Checkbox
                  key={field}
                  label={field}
                  description={s.description}
                  checked={values[field] === true}
                  onChange={(e) => setValues({ ...values, [field]: e.currentTarget.checked })}
                  error={err}
                />
              );
            if (options)
              return (
                <Select
                  key={field}
                  label={label}
                  description={s.description}
                  data={options}
                  required={required.has(field)}
                  value={(values[field] as string | undefined) ?? null}
                  onChange={(v) => setValues({ ...values, [field]: v ?? undefined })}
                  error={err}
                />
              );
            if (s.type === 'integer' || s.type === 'number')
              return (
                <NumberInput
                  key={field}
                  label={label}
                  description={s.description}
                  required={required.has(field)}
                  value={(values[field] as number | undefined) ?? ''}
                  onChange={(v) => setValues({ ...values, [field]: typeof v === 'number' ? v : undefined })}
                  error={err}
                />
              );
            return (
              <TextInput
                key={field}
                label={label}
                description={s.description}
                required={required.has(field)}
                value={(values[field] as string | undefined) ?? ''}
                onChange={(e) => setValues({ ...values, [field]: e.currentTarget.value })}
                error={err}
              />
            );
          })}
        {error && (
          <Alert color="red" title={error.code} role="alert">
            {error.message}
          </Alert>
        )}
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
