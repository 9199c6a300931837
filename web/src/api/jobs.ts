/** A job followed until it ends: polled every half second while Pending or Running. */
import { useQuery } from '@tanstack/react-query';
import { get, type Job } from './client';

const DONE = new Set(['Succeeded', 'Failed', 'Cancelled']);

export function isDone(job: Pick<Job, 'state'>): boolean {
  return DONE.has(job.state);
}

export function useJob(uuid: string | undefined, initial?: Job) {
  return useQuery({
    queryKey: ['job', uuid],
    queryFn: () => get<Job>(`/v1/jobs/${uuid}`),
    enabled: !!uuid,
    ...(initial ? { initialData: initial } : {}),
    refetchInterval: (q) => (q.state.data && isDone(q.state.data) ? false : 500),
  });
}
