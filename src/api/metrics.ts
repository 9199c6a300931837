/**
 * Prometheus metrics at /metrics: HTTP (requests, latency, in flight, refused), jobs, queues,
 * workflow rollbacks, database pool, process, and the inventory (inventory-metrics.ts).
 * Invariant: names follow Prometheus's rules (promtool check metrics): counters and only counters
 * end in `_total`, units are base units named in the suffix (`_seconds`, `_bytes`).
 */
import type { Pool } from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { statementsSent } from '../db/prepared.js';
import type { EngineMetrics } from '../engine/engine.js';
import type { QueueSet } from '../engine/queues.js';
import { type Inventory, registerInventoryGauges } from './inventory-metrics.js';
import { LOAD_CLASSES, LoadState } from './load-shedding.js';

/**
 * prom-client's defaults include three gauges named `…_total` (sums of the per-type gauges
 * `nodejs_active_handles` etc., which stay): Prometheus tooling rejects a gauge with that suffix.
 */
const NOT_A_COUNTER = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
const PREFIX = 'nimbus_';

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

  /** what the load-shedding hook counts (api/load-shedding.ts) */
  readonly load = new LoadState();

  constructor(pool: Pool, queues: QueueSet, inventory?: Inventory) {
    // the defaults are named process_… and nodejs_… already: the prefix only says whose they are
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    for (const name of NOT_A_COUNTER) this.registry.removeSingleMetric(PREFIX + name);
    const registers = [this.registry];
    const load = this.load;
    new Gauge({
      name: 'nimbus_http_requests_in_flight',
      help: 'HTTP requests being served, by load class (exempt, wait, read, write)',
      labelNames: ['class'] as const,
      registers,
      collect() {
        for (const c of LOAD_CLASSES) this.set({ class: c }, load.inFlight[c]);
      },
    });
    new Counter({
      name: 'nimbus_http_requests_refused_total',
      help: 'HTTP requests answered 503 OVERLOADED because their class was at its limit',
      labelNames: ['class'] as const,
      registers,
      collect() {
        this.reset();
        for (const c of LOAD_CLASSES) this.inc({ class: c }, load.refused[c]);
      },
    });
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
    new Counter({
      name: 'nimbus_db_statements_total',
      help: 'SQL statements this node sent to PostgreSQL (every pool, begin and commit included)',
      registers,
      collect() {
        this.reset();
        this.inc(statementsSent.count);
      },
    });
    if (inventory) registerInventoryGauges(this.registry, inventory);
  }

  jobFinished(kind: string, state: string, seconds: number): void {
    this.jobs.inc({ kind, state });
    this.jobDuration.observe({ kind }, seconds);
  }

  rollback(flow: string): void {
    this.rollbacks.inc({ flow });
  }
}
