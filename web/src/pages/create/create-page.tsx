/**
 * `/<kind>/new`: the create wizard of any kind the caller may create. Its steps come from
 * wizards.ts over the contract's create body; every field is checked as the user types against
 * that body's schema and the kind's rules between fields (the API's own rules, from the
 * catalog); the API's refusal shows by the field it names (on the step that holds it). Once
 * sent, the job's progress shows live; rows made with it (IP ranges, rules) are sent when the
 * parent's job succeeds, and the new resource's state follows the event stream.
 */
import { Alert, Anchor, Badge, Button, Group, Stack, Stepper, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Link, useParams } from 'react-router';
import { type BodyForm, useBodyForm } from '../../api/body-form';
import { kindOf, visibleKinds } from '../../api/catalog';
import { get, type Job, request } from '../../api/client';
import { subscribeEvents } from '../../api/events';
import { useJob } from '../../api/jobs';
import { useSession } from '../../api/session';
import type { Resource } from '../../api/types';
import type { Schema } from '../../api/validate';
import { BodyFields, bodyFields, FormAlerts } from '../../components/body-fields';
import { JobProgress } from '../../components/job-progress';
import { NotFoundPage } from '../not-found';
import { ChildRows, childSchema } from './child-rows';
import { wizardFor } from './wizards';

export function CreatePage() {
  const { kind = '' } = useParams();
  const session = useSession();
  const isAdmin = session?.isAdmin ?? false;
  const k = kindOf(kind);
  const allowed = !!k?.create && visibleKinds(isAdmin).includes(k) && (isAdmin || !k.adminOnly);
  const schema = k?.create as Schema | undefined;
  const form = useBodyForm(schema, k?.createRules as Schema | undefined);
  const wizard = wizardFor(kind, bodyFields(kind, schema, isAdmin));
  const child = wizard.children ? kindOf(wizard.children.kind) : undefined;
  const rows = useRef(new Map<number, BodyForm>());
  const [step, setStep] = useState(0);
  const [job, setJob] = useState<Job | null>(null);
  const [childJobs, setChildJobs] = useState<Job[]>([]);
  const [busy, setBusy] = useState(false);
  const followed = useJob(job?.uuid, job ?? undefined).data;
  const childrenSent = useRef(false);

  // the parent exists: send the rows made with it, one after the other, each shown as it runs
  useEffect(() => {
    if (followed?.state !== 'Succeeded' || !wizard.children || childrenSent.current) return;
    childrenSent.current = true;
    const { kind: childKind, parentField } = wizard.children;
    void (async () => {
      for (const f of rows.current.values()) {
        const j = await f.submit((body) =>
          request<Job>('POST', `/v1/${childKind}`, { ...body, [parentField]: followed.resourceUuid }),
        );
        if (j) setChildJobs((prev) => [...prev, j]);
      }
    })();
  }, [followed, wizard.children]);

  if (!k || !allowed) return <NotFoundPage what={`The page /${kind}/new`} />;
  const last = wizard.steps.length; // the review step
  const stepOf = (field: string) =>
    wizard.steps.findIndex((s) => s.fields.some((f) => field === f || field.startsWith(`${f}.`)));

  async function create() {
    const childForms = [...rows.current.values()];
    for (const f of childForms) f.reveal();
    if (childForms.some((f) => f.problems.length > 0)) return;
    setBusy(true);
    const accepted = await form.submit((body) => request<Job>('POST', `/v1/${kind}`, body));
    setBusy(false);
    if (accepted) return setJob(accepted);
    // the first step holding a field with a problem (the schema's or the API's)
    const bad = wizard.steps.findIndex((s) => s.fields.some((f) => form.errorFor(f)));
    const named = form.problems.map((p) => stepOf(p.field)).find((i) => i >= 0);
    if (bad >= 0) setStep(bad);
    else if (named !== undefined) setStep(named);
  }

  return (
    <Stack maw={880}>
      <div>
        <Text size="sm" c="dimmed">
          <Anchor component={Link} to={`/${kind}`} underline="always">
            {k.kind}
          </Anchor>{' '}
          / new
        </Text>
        <Title order={2}>New {k.singular}</Title>
        <Text size="sm" c="dimmed">
          {k.summary}
        </Text>
      </div>
      <Stepper active={step} onStepClick={job ? undefined : setStep} size="sm" allowNextStepsSelect={!job}>
        {wizard.steps.map((s, i) => (
          <Stepper.Step key={s.title} label={s.title} data-testid={`step-${i}`}>
            <BodyFields kind={kind} schema={schema} form={form} fields={s.fields} />
          </Stepper.Step>
        ))}
        <Stepper.Step label="Review">
          <Review kind={kind} values={form.values} />
        </Stepper.Step>
      </Stepper>
      {wizard.children && child?.create && (
        <Stack gap="xs">
          <Title order={3} size="h5">
            {child.kind}
          </Title>
          <ChildRows
            spec={wizard.children}
            schema={childSchema(child.create as Schema, wizard.children.parentField)}
            rules={child.createRules as Schema | undefined}
            singular={child.singular}
            forms={rows}
            locked={!!job}
          />
        </Stack>
      )}
      <FormAlerts form={form} onScreen={wizard.steps[step]?.fields ?? []} />
      {!job && (
        <Group justify="space-between">
          <Button variant="default" disabled={step === 0} onClick={() => setStep(step - 1)}>
            Back
          </Button>
          <Group>
            {step < last && (
              <Button variant="light" onClick={() => setStep(step + 1)}>
                Next
              </Button>
            )}
            <Button loading={busy} onClick={create}>
              Create
            </Button>
          </Group>
        </Group>
      )}
      {job && <JobProgress job={job} />}
      {childJobs.map((j) => (
        <JobProgress key={j.uuid} job={j} />
      ))}
      {followed?.state === 'Succeeded' && followed.resourceUuid && (
        <Created kind={kind} uuid={followed.resourceUuid} />
      )}
    </Stack>
  );
}

/** What will be sent, field by field (sizes and references as the inputs showed them). */
function Review({ kind, values }: { kind: string; values: Record<string, unknown> }) {
  const entries = Object.entries(values);
  if (entries.length === 0) return <Text size="sm">Nothing filled in yet.</Text>;
  return (
    <Stack gap={2} data-testid="review">
      <Text size="sm" c="dimmed">
        POST /v1/{kind}
      </Text>
      {entries.map(([f, v]) => (
        <Text size="sm" key={f} ff="monospace">
          {f}: {JSON.stringify(v)}
        </Text>
      ))}
    </Stack>
  );
}

/** The new resource, with its state as the event stream moves it, and a link to its page. */
function Created({ kind, uuid }: { kind: string; uuid: string }) {
  const queries = useQueryClient();
  const row = useQuery({
    queryKey: ['kind', kind, uuid],
    queryFn: () => get<Resource>(`/v1/${kind}/${uuid}`),
  });
  useEffect(
    () =>
      subscribeEvents((e) => {
        if (e.resourceUuid === uuid) void queries.invalidateQueries({ queryKey: ['kind', kind, uuid] });
      }),
    [kind, uuid, queries],
  );
  const r = row.data;
  if (!r) return null;
  return (
    <Alert color="green" title="Created" data-testid="created">
      <Group>
        <Anchor component={Link} to={`/${kind}/${uuid}`}>
          {String(r.name ?? uuid)}
        </Anchor>
        {typeof r.state === 'string' && (
          <Badge data-testid="created-state" variant="light">
            {r.state}
          </Badge>
        )}
      </Group>
    </Alert>
  );
}
