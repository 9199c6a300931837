/**
 * A job followed until it ends. The event stream drives it: every event the job writes (a VM's
 * state change, the job's own state change) reads the job again at once, and the events are kept
 * for the page to show as they happen. The engine writes no event per step, so while the job is
 * Pending or Running it is also read once a second, which catches the steps between events.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { get, type Job, type ListPage, listPath } from './client';
import { subscribeEvents } from './events';
import type { CloudEvent } from './types';

const DONE = new Set(['Succeeded', 'Failed', 'Cancelled']);

export function isDone(job: Pick<Job, 'state'>): boolean {
  return DONE.has(job.state);
}

/** an event written by the job, or about it (its own job.state.changed) */
export function isOfJob(e: CloudEvent, uuid: string): boolean {
  return e.jobUuid === uuid || (e.resourceKind === 'jobs' && e.resourceUuid === uuid);
}

export function useJob(uuid: string | undefined, initial?: Job) {
  const queries = useQueryClient();
  useEffect(() => {
    if (!uuid) return;
    return subscribeEvents((e) => {
      if (isOfJob(e, uuid)) void queries.invalidateQueries({ queryKey: ['job', uuid] });
    });
  }, [uuid, queries]);
  return useQuery({
    queryKey: ['job', uuid],
    queryFn: () => get<Job>(`/v1/jobs/${uuid}`),
    enabled: !!uuid,
    ...(initial ? { initialData: initial } : {}),
    refetchInterval: (q) => (q.state.data && isDone(q.state.data) ? false : 1000),
  });
}

/**
 * The events a job wrote, as the stream delivers them; those written before the page followed it
 * are read once from the list (`jobUuid=`), and the two merge by their sequence number.
 */
export function useJobEvents(uuid: string | undefined): CloudEvent[] {
  const [events, setEvents] = useState<CloudEvent[]>([]);
  useEffect(() => {
    if (!uuid) return;
    setEvents([]);
    const merge = (more: CloudEvent[]) =>
      setEvents((prev) => {
        const byId = new Map([...prev, ...more].map((e) => [e.id, e]));
        return [...byId.values()].sort((a, b) => Number(a.id) - Number(b.id)).slice(-20);
      });
    const stop = subscribeEvents((e) => {
      if (e.jobUuid === uuid && e.resourceKind !== 'jobs') merge([e]);
    });
    get<ListPage<CloudEvent>>(listPath('events', { q: [`jobUuid=${uuid}`, 'resourceKind!=jobs'], limit: 20 }))
      .then((page) => merge(page.items))
      .catch(() => {});
    return stop;
  }, [uuid]);
  return events;
}
