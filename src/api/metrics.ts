/** Prometheus metrics at /metrics: HTTP, jobs, queues, workflow rollbacks, database pool. */
import type { Pool } from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineMetrics } from '../engine/engine.js';
import type { QueueSet } from '../engine/queues.js';

export class Metrics implements EngineMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'nimbus_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'nimbus_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: 'nimbus_jobs_finished_total',
    help: 'finished jobs by kind and final state',
    labelNames: ['kind', 'state'] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'nimbus_job_duration_seconds',
    help: 'job run time by kind',
    labelNames: ['kind'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly rollbacks = new Counter({
    name: 'nimbus_workflow_rollbacks_total',
    help: 'workflow chains that failed and were rolled back, by flow',
    labelNames: ['flow'] as const,
    registers: [this.registry],
  });

  constructor(
    pool: Pool,
    queues: QueueSet,
    jobsByState: () => Promise<Array<{ kind: string; state: string; n: number }>>,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'nimbus_process_' });
    const registers = [this.registry];
    new Gauge({
      name: 'nimbus_queue_tasks',
      help: 'per-resource queue tasks, running or waiting',
      labelNames: ['status'] as const,
      registers,
      collect() {
        const d = queues.depth();
        this.set({ status: 'waiting' }, d.waiting);
        this.set({ status: 'running' }, d.running);
      },
    });
    new Gauge({
      name: 'nimbus_queue_keys',
      help: 'resources with work queued or running',
      registers,
      collect() {
        this.set(queues.depth().keys);
      },
    });
    new Gauge({
      name: 'nimbus_db_pool_connections',
      help: 'database pool connections by status',
      labelNames: ['status'] as const,
      registers,
      collect() {
        this.set({ status: 'total' }, pool.totalCount);
        this.set({ status: 'idle' }, pool.idleCount);
        this.set({ status: 'waiting' }, pool.waitingCount);
      },
    });
    new Gauge({
      name: 'nimbus_jobs_unfinished',
      help: 'jobs not yet finished, by kind and state (from the database)',
      labelNames: ['kind', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        for (const r of await jobsByState()) this.set({ kind: r.kind, state: r.state }, r.n);
      },
    });
  }

  jobFinished(kind: string, state: string, seconds: number): void {
    this.jobs.inc({ kind, state });
    this.jobDuration.observe({ kind }, seconds);
  }

  rollback(flow: string): void {
    this.rollbacks.inc({ flow });
  }
}
