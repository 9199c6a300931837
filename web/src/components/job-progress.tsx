/** A job's progress as it runs: state, percentage, the step in flight and those done; a failure's code and message. */
import { Alert, Badge, Group, Progress, Stack, Text } from '@mantine/core';
import type { Job } from '../api/client';
import { isDone, useJob } from '../api/jobs';

interface JobError {
  code?: string;
  message?: string;
  details?: { rollbackFailures?: unknown[] };
}

export function JobProgress({ job: initial }: { job: Job }) {
  const { data } = useJob(initial.uuid, initial);
  const job = data ?? initial;
  const error = job.error as JobError | null;
  const color = job.state === 'Succeeded' ? 'green' : job.state === 'Failed' ? 'red' : 'blue';
  return (
    <Stack gap="xs" data-testid="job-progress" data-job-state={job.state}>
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
        <Text size="xs" c="dimmed">
          {job.steps.phase}: {job.steps.done.join(' → ')}
          {job.steps.current ? ` → ${job.steps.current}…` : ''}
        </Text>
      )}
      {job.state === 'Failed' && error && (
        <Alert color="red" title={error.code ?? 'failed'} role="alert">
          {error.message}
          {error.details?.rollbackFailures?.length
            ? ` (rollback failures: ${error.details.rollbackFailures.length})`
            : ''}
        </Alert>
      )}
    </Stack>
  );
}
