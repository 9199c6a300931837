/**
 * Jobs finished per 10 seconds over the last 5 minutes, succeeded and failed, live: seeded from
 * the jobs that finished in the window, then counted from the event stream's job.state.changed.
 */
import { useEffect, useMemo, useState } from 'react';
import { get, type Job, type ListPage, listPath } from '../api/client';
import { subscribeEvents } from '../api/events';
import { EChart } from './echart';

const BUCKET_MS = 10_000;
const WINDOW_MS = 5 * 60_000;
type Counts = Map<number, { ok: number; failed: number }>;

function add(counts: Counts, at: number, failed: boolean): Counts {
  const bucket = Math.floor(at / BUCKET_MS) * BUCKET_MS;
  const next = new Map(counts);
  const c = next.get(bucket) ?? { ok: 0, failed: 0 };
  next.set(bucket, failed ? { ...c, failed: c.failed + 1 } : { ...c, ok: c.ok + 1 });
  return next;
}

export function LiveJobsChart() {
  const [counts, setCounts] = useState<Counts>(new Map());
  const [now, setNow] = useState(Date.now());
  const [seen, setSeen] = useState(0);

  useEffect(() => {
    const since = new Date(Date.now() - WINDOW_MS).toISOString();
    let cancelled = false;
    void get<ListPage<Pick<Job, 'state' | 'finishedAt'>>>(
      listPath('jobs', { q: [`finishedAt>=${since}`], fields: ['state', 'finishedAt'], limit: 1000 }),
    ).then((page) => {
      if (cancelled) return;
      setCounts((c) =>
        page.items.reduce(
          (acc, j) => (j.finishedAt ? add(acc, Date.parse(j.finishedAt), j.state !== 'Succeeded') : acc),
          c,
        ),
      );
    });
    const unsubscribe = subscribeEvents((e) => {
      setSeen((n) => n + 1);
      const state = e.data.state;
      if (
        e.type !== 'job.state.changed' ||
        (state !== 'Succeeded' && state !== 'Failed' && state !== 'Cancelled')
      )
        return;
      setCounts((c) => add(c, Date.parse(e.at), state !== 'Succeeded'));
    });
    const tick = setInterval(() => setNow(Date.now()), BUCKET_MS / 2);
    return () => {
      cancelled = true;
      unsubscribe();
      clearInterval(tick);
    };
  }, []);

  const option = useMemo(() => {
    const end = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const buckets = Array.from(
      { length: WINDOW_MS / BUCKET_MS },
      (_, i) => end - WINDOW_MS + (i + 1) * BUCKET_MS,
    );
    const label = (t: number) =>
      new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    return {
      animationDuration: 300,
      tooltip: { trigger: 'axis' },
      legend: { data: ['succeeded', 'failed'], top: 0 },
      grid: { left: 40, right: 10, top: 36, bottom: 30 },
      xAxis: { type: 'category', data: buckets.map(label) },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          name: 'succeeded',
          type: 'bar',
          stack: 'jobs',
          color: '#2f9e44',
          data: buckets.map((b) => counts.get(b)?.ok ?? 0),
        },
        {
          name: 'failed',
          type: 'bar',
          stack: 'jobs',
          color: '#e03131',
          data: buckets.map((b) => counts.get(b)?.failed ?? 0),
        },
      ],
    };
  }, [counts, now]);

  const total = [...counts.values()].reduce((n, c) => n + c.ok + c.failed, 0);
  return (
    <div data-testid="live-jobs" data-jobs-finished={total} data-events-seen={seen}>
      <EChart option={option} label={`jobs finished per 10 seconds, ${total} in the last 5 minutes`} />
    </div>
  );
}
