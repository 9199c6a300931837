/**
 * A job's progress as it runs: state, percentage, the step in flight and those done, and the
 * events it writes as the stream delivers them. A failure shows its code and message and what
 * was rolled back: the steps the job had done going forward (as seen while following it, or
 * from its journal) that are no longer done once its rollback ran, and any rollback that failed.
 */
import { Alert, Badge, Group, List, Progress, Stack, Text } from '@mantine/core';
import { useRef } from 'react';
import type { Job } from '../api/client';
import { isDone, useJob, useJobEvents } from '../api/jobs';
import { when } from '../format';

interface JobError {
  code?: string;
  message?: string;
  details?: { rollbackFailures?: { step?: string; code?: string; message?: string }[] };
}

/** Forward steps seen done, kept across re-renders: the rollback empties the journal's list. */
function useForwardSteps(job: Job): string[] {
  const seen = useRef<string[]>([]);
  if (job.steps?.phase === 'forward')
    for (const s of job.steps.done) if (!seen.current.includes(s)) seen.current.push(s);
  return seen.current;
}

export function JobProgress({ job: initial }: { job: Job }) {
  const { data } = useJob(initial.uuid, initial);
  const job = data ?? initial;
  const events = useJobEvents(job.uuid);
  const forward = useForwardSteps(job);
  const error = job.error as JobError | null;
  const color = job.state === 'Succeeded' ? 'green' : job.state === 'Failed' ? 'red' : 'blue';
  const rollingBack = job.steps?.phase === 'rollback';
  const failures = error?.details?.rollbackFailures ?? [];
  const rolledBack = rollingBack
    ? forward
        .filter((s) => !job.steps?.done.includes(s) && !failures.some((f) => f.step === s))
        .slice()
        .reverse()
    : [];
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
            <Text size="sm">Every step it had done was rolled back.</Text>
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
