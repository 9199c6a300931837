/**
 * A job's progress as it runs: state, percentage, the step in flight and those done, and the
 * events it writes as the stream delivers them. A failure shows its code and message and what
 * was rolled back (the journal's steps undone, in the order they were undone), and any rollback
 * that failed.
 */
import { Alert, Badge, Group, List, Progress, Stack, Text } from '@mantine/core';
import type { Job } from '../api/client';
import { isDone, useJob, useJobEvents } from '../api/jobs';
import { when } from '../format';

interface JobError {
  code?: string;
  message?: string;
  details?: { rollbackFailures?: { step?: string; code?: string; message?: string }[] };
}

export function JobProgress({ job: initial }: { job: Job }) {
  const { data } = useJob(initial.uuid, initial);
  const job = data ?? initial;
  const events = useJobEvents(job.uuid);
  const error = job.error as JobError | null;
  const color = job.state === 'Succeeded' ? 'green' : job.state === 'Failed' ? 'red' : 'blue';
  const rollingBack = job.steps?.phase === 'rollback';
  const failures = error?.details?.rollbackFailures ?? [];
  // the journal's steps undone, in the order they were undone (a failed rollback is listed below)
  const rolledBack = (rollingBack ? (job.steps?.rolledBack ?? []) : []).filter(
    (s) => !failures.some((f) => f.step === s),
  );
  return (
    <Stack gap="xs" data-testid="job-progress" data-job-state={job.state} aria-live="polite">
      <Group justify="space-between">
        <Text size="sm">
          Job{' '}
          <Text span ff="monospace">
            {job.kind}
          </Text>
        </Text>
        <Badge color={color}>{job.state}</Badge>
      </Group>
      <Progress value={job.progress} color={color} animated={!isDone(job)} aria-label="job progress" />
      {job.progressMessage && <Text size="sm">{job.progressMessage}</Text>}
      {job.steps && (
        <Text size="xs" c="dimmed" data-testid="job-steps">
          {job.steps.phase}: {job.steps.done.join(' → ')}
          {job.steps.current ? ` → ${job.steps.current}…` : ''}
        </Text>
      )}
      {events.length > 0 && (
        <List size="xs" data-testid="job-events">
          {events.map((e) => (
            <List.Item key={e.id}>
              <Text span size="xs" ff="monospace">
                {e.type}
              </Text>{' '}
              {typeof e.data.state === 'string' ? `→ ${e.data.state} ` : ''}
              <Text span size="xs" c="dimmed">
                {when(e.at)}
              </Text>
            </List.Item>
          ))}
        </List>
      )}
      {job.state === 'Failed' && error && (
        <Alert color="red" title={error.code ?? 'failed'} role="alert" data-testid="job-error">
          <Text size="sm">{error.message}</Text>
          {rolledBack.length > 0 && (
            <Text size="sm" data-testid="job-rolled-back">
              Rolled back: {rolledBack.join(', ')}
            </Text>
          )}
          {rollingBack && rolledBack.length === 0 && failures.length === 0 && (
            <Text size="sm">It had done nothing that needed undoing.</Text>
          )}
          {failures.map((f) => (
            <Text size="sm" key={`${f.step}:${f.code}`}>
              Rollback of {f.step} failed: {f.code} {f.message}
            </Text>
          ))}
        </Alert>
      )}
    </Stack>
  );
}
