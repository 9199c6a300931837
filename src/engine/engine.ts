/**
 * The engine runs every asynchronous operation: a job row, a flow chain journaled on that row,
 * executed in the job's per-resource queue. It owns:
 * - submission (the job row is inserted in the caller's transaction; `start` after commit);
 * - execution with rollback, progress and events (job.state.changed);
 * - waiting for a job to finish (`?wait=true`);
 * - recovery: on start and periodically, jobs owned by dead nodes are claimed with a conditional
 *   UPDATE and resumed or rolled back from their journal.
 * - reclaiming rows that dead owners left in a transitional state (registered reclaimers, run
 *   with every recovery pass; docs/engine.md "Transitional rows");
 * - surviving a lost database connection: journal and outcome writes are retried until the
 *   database answers again (bounded), rollbacks and the steps of 'resume' chains that failed on
 *   a lost connection are run again, and a job whose runner still could not go on is run again
 *   from its journal (as recovery would after a crash), so it ends rolled back or resumed.
 * - cluster-wide serialization: a job runs only while it holds a slot of its queue in the
 *   database (claimJob); a job whose queue is busy on another node waits for a job of that
 *   queue to end anywhere (QueueWake) and is queued again;
 * - answering waiters for jobs that ran on other nodes (their job events arrive relayed).
 * Invariant: a job row is only ever changed by its owner node, with `where owner_node = me`.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Logger } from 'pino';
import { isConnectionLost } from '../db/errors.js';
import type { Db } from '../db/pool.js';
import type { FlowJournal } from '../db/schema.js';
import type { Tx } from '../db/transaction.js';
import { CloudError, toErrorBody } from '../kernel/errors.js';
import { type EventBatch, type EventBus, type EventInput, eventValues, storedEvents } from './events.js';
import type { FaultRegistry } from './faults.js';
import { executeFlow, type FlowDef, type FlowOutcome, type StepContext } from './flow.js';
import { finishedJobValues, insertFinishedJob, insertFinishedJobs } from './job-record.js';
import {
  claimJob,
  finishJob,
  jobEvent,
  QUEUE_BUSY,
  type StoredEvent,
  saveJournal,
} from './job-statements.js';
import { JobWaiters } from './job-waiters.js';
import { insertJob, isFinished, type JobRow, type JobSpec, jobValues } from './jobs.js';
import { OrphanJobs } from './orphan-jobs.js';
import { DEFAULT_DEAD_AFTER_MS, ownerGone, ownerInterrupted } from './owners.js';
import { QueueWake } from './queue-wake.js';
import { type QueueSet, Slots } from './queues.js';

export interface EngineMetrics {
  jobFinished(kind: string, state: string, seconds: number): void;
  rollback(kind: string): void;
}

export interface EngineOptions<D> {
  db: Db;
  deps: D;
  events: EventBus;
  faults: FaultRegistry;
  queues: QueueSet;
  nodeId: string;
  log: Logger;
  metrics?: EngineMetrics;
  /** jobs this node runs at once (the rest wait, still Pending, for a slot); no limit by default */
  maxRunningJobs?: number;
  /** a node silent this long is dead (what steps use to judge the owners of rows they wait for) */
  deadAfterMs?: number;
  /** how long a write of the job row is retried while the database is unreachable (default 120 s) */
  dbRetryMs?: number;
}

/** Reclaims the rows dead owners left transitional; returns how many it reclaimed. */
export type Reclaimer = (deadAfterMs: number) => Promise<number>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** reclaimers run with a recovery pass at most this often (a pass comes with every heartbeat) */
const RECLAIM_EVERY_MS = 5000;
/** the pause before the n-th retry after a lost connection: 100 ms doubling up to 5 s */
const backoff = (attempt: number) => Math.min(5000, 100 * 2 ** Math.min(attempt, 6));

type AnyFlow<D> = FlowDef<never, D>;

export class Engine<D> {
  private readonly flows = new Map<string, AnyFlow<D>>();
  private readonly waiters: JobWaiters;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly slots: Slots;
  private readonly reclaimers = new Map<string, Reclaimer>();
  /** when the reclaimers last ran: at most every RECLAIM_EVERY_MS (the first pass always runs) */
  private reclaimedAt = 0;
  private readonly queueWake = new QueueWake();
  private readonly orphans = new OrphanJobs();

  constructor(private readonly o: EngineOptions<D>) {
    this.slots = new Slots(
      o.maxRunningJobs && o.maxRunningJobs > 0 ? o.maxRunningJobs : Number.POSITIVE_INFINITY,
    );
    this.waiters = new JobWaiters(o.nodeId, (uuid) => this.load(uuid));
    // a job that ended anywhere (this node's, or another's relayed) frees a slot of its queue,
    // and answers whoever waits for it here
    o.events.subscribe((e, remote) => {
      if (e.type !== 'job.state.changed' || !isFinished(e.data.state as JobRow['state'])) return;
      if (typeof e.data.queueKey === 'string') this.queueWake.wake(e.data.queueKey);
      if (remote) this.waiters.remoteEnded(e.resourceUuid);
    });
  }

  register<P>(def: FlowDef<P, D>): void {
    if (this.flows.has(def.kind)) throw new Error(`flow ${def.kind} registered twice`);
    this.flows.set(def.kind, def as unknown as AnyFlow<D>);
  }

  /** Every registered chain's step names, by job kind (rollback tables prove they cover them all). */
  chainSteps(): Map<string, string[]> {
    return new Map([...this.flows].map(([kind, def]) => [kind, def.steps.map((step) => step.name)]));
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  /**
   * Adds a reclaimer of one kind of transitional row (image-cache copies, router claims…): it
   * runs after the jobs of dead nodes were claimed, so rows whose job this node now recovers are
   * left to that job's rollback, and only rows whose owner job ended or vanished remain for it.
   */
  addReclaimer(name: string, reclaim: Reclaimer): void {
    if (this.reclaimers.has(name)) throw new Error(`reclaimer ${name} registered twice`);
    this.reclaimers.set(name, reclaim);
  }

  /** Inserts a Pending job in the caller's transaction; call `start` once it has committed. */
  async submit(tx: Tx, spec: JobSpec, batch?: EventBatch): Promise<JobRow> {
    if (!this.flows.has(spec.kind)) throw new Error(`no flow registered for job kind ${spec.kind}`);
    const job = await insertJob(tx, spec, this.o.nodeId);
    batch?.add(jobEvent(job, 'Pending'));
    return job;
  }

  /**
   * Records a job whose admission did all its work in the caller's transaction (a pool hand-out):
   * inserted Succeeded with its result and never queued, so the caller is answered without
   * waiting for a running slot behind other work. Its kind is registered all the same: the flow
   * names the work, and every step counts as done.
   */
  async recordFinished(tx: Tx, spec: JobSpec, result: unknown, batch?: EventBatch): Promise<JobRow> {
    const values = finishedJobValues(spec, this.o.nodeId, this.stepsOf(spec.kind), result);
    const job = await tx.insertInto('jobs').values(values).returningAll().executeTakeFirstOrThrow();
    batch?.add(jobEvent(job, 'Succeeded'));
    return job;
  }

  /**
   * recordFinished and `events` in ONE statement (job-record.ts), with `also` computed by it;
   * publish `stored` after the commit.
   */
  recordFinishedWith<T>(tx: Tx, spec: JobSpec, result: unknown, events: EventInput[], also?: RawBuilder<T>) {
    const values = finishedJobValues(spec, this.o.nodeId, this.stepsOf(spec.kind), result);
    const job = { ...values, accountUuid: spec.accountUuid } as unknown as JobRow;
    return insertFinishedJob(tx, values, [...events, jobEvent(job, 'Succeeded')], also);
  }

  /** recordFinishedWith for several jobs at once, in ONE statement (a batch of pool hand-outs) */
  recordFinishedMany(tx: Tx, items: Array<{ spec: JobSpec; result: unknown; events: EventInput[] }>) {
    return insertFinishedJobs(
      tx,
      items.map(({ spec, result, events }) => {
        const values = finishedJobValues(spec, this.o.nodeId, this.stepsOf(spec.kind), result);
        const job = { ...values, accountUuid: spec.accountUuid } as unknown as JobRow;
        return { values, events: [...events, jobEvent(job, 'Succeeded')] };
      }),
    );
  }

  private stepsOf(kind: string): string[] {
    const flow = this.flows.get(kind);
    if (!flow) throw new Error(`no flow registered for job kind ${kind}`);
    return flow.steps.map((step) => step.name);
  }

  /** Submits in its own transaction (with the given events) and starts the job. */
  async submitAndStart(
    spec: JobSpec,
    prepare?: (tx: Tx, batch: EventBatch) => Promise<void>,
  ): Promise<JobRow> {
    const job = await this.o.events.inTransaction(this.o.db, async (tx, batch) => {
      if (prepare) await prepare(tx, batch);
      return this.submit(tx, spec, batch);
    });
    this.start(job.uuid, job.queueKey);
    return job;
  }

  /**
   * Admission in one round trip: the resource's record, its create job (Pending) and their events
   * are inserted by ONE statement (a CTE, atomic without a transaction), then the job is started.
   * With `check` (e.g. a quota reservation), the check and that statement share a transaction.
   */
  async submitWithRecord(
    spec: JobSpec,
    record: { table: string; row: Record<string, unknown> },
    events: EventInput[],
    check?: (tx: Tx) => Promise<void>,
  ): Promise<JobRow> {
    if (!this.flows.has(spec.kind)) throw new Error(`no flow registered for job kind ${spec.kind}`);
    const values = jobValues(spec, this.o.nodeId);
    const inputs = [
      ...events,
      jobEvent(
        { ...values, uuid: values.uuid, accountUuid: spec.accountUuid } as unknown as JobRow,
        'Pending',
      ),
    ];
    const rows = eventValues(inputs);
    const insert = async (exec: Db | Tx) => {
      // biome-ignore lint/suspicious/noExplicitAny: the record's table is the caller's
      const db = exec as unknown as Kysely<any>;
      const row = await db
        .with('r', (qb) => qb.insertInto(record.table).values(record.row))
        .with('e', (qb) => qb.insertInto('events').values(rows).returning(['id', 'uuid', 'at']))
        .insertInto('jobs')
        .values(values)
        .returningAll()
        .returning(
          sql<unknown>`(select json_agg(json_build_object('id', e.id, 'uuid', e.uuid, 'at', e.at)) from e)`.as(
            'storedEvents',
          ),
        )
        .executeTakeFirstOrThrow();
      const { storedEvents: returned, ...job } = row as JobRow & {
        storedEvents: Array<{ id: number; uuid: string; at: string }> | null;
      };
      return { job: job as JobRow, stored: storedEvents(rows, returned ?? [], inputs) };
    };
    const { job, stored } = check
      ? await this.o.db.transaction().execute(async (tx) => {
          await check(tx);
          return insert(tx);
        })
      : await insert(this.o.db);
    this.o.events.publish(stored);
    this.start(job.uuid, job.queueKey);
    return job;
  }

  /** Queues the job for execution in its resource's queue. Never throws. */
  start(uuid: string, queueKey: string, attempt = 0): void {
    this.orphans.started(uuid);
    const run = this.o.queues
      .run(queueKey, () => this.runJob(uuid, queueKey))
      .then(async (outcome) => {
        if (outcome !== QUEUE_BUSY) return this.orphans.ended(uuid);
        // another node holds the queue: leave this node's lane (a job it recovers for that very
        // queue must not wait behind this one) and try again once a job of the queue ended
        await this.queueWake.wait(queueKey);
        if (!this.stopping) this.start(uuid, queueKey, attempt);
      })
      .catch((err) => {
        if (isConnectionLost(err) && !this.stopping) {
          // the database went away under the runner: run the job again from its journal once it
          // answers (claimJob sees it Running: rolled back or resumed, as after a crash)
          const pause = backoff(attempt + 3);
          this.o.log.warn(
            { err, job: uuid, retryInMs: pause },
            'job runner lost the database; running it again',
          );
          const timer = setTimeout(() => this.start(uuid, queueKey, attempt + 1), pause);
          timer.unref();
          return;
        }
        this.orphans.ended(uuid);
        this.o.log.error({ err, job: uuid }, 'job runner crashed');
      });
    this.inFlight.add(run);
    run.finally(() => this.inFlight.delete(run));
  }

  /** Runs a write of the job row again while the database connection is lost (bounded). */
  private async durable<T>(write: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.o.dbRetryMs ?? 120_000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!isConnectionLost(err) || Date.now() > deadline) throw err;
        await sleep(backoff(attempt));
      }
    }
  }

  /** StepHooks.retry: an action that failed on a lost connection runs again (about 2 min at most). */
  private retryAfterLostConnection() {
    return async (err: unknown, attempt: number): Promise<boolean> => {
      if (!isConnectionLost(err) || attempt > 30) return false;
      this.o.log.warn({ err, attempt }, 'a step lost the database connection; running it again');
      await sleep(backoff(attempt));
      return true;
    };
  }

  /** Resolves with the job once finished, or with its current row after `timeoutMs`. */
  waitFor(uuid: string, timeoutMs: number): Promise<JobRow | undefined> {
    return this.waiters.waitFor(uuid, timeoutMs);
  }

  load(uuid: string): Promise<JobRow | undefined> {
    return this.o.db.selectFrom('jobs').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  }

  /** Cancels a job that has not started; a running job cannot be cancelled. */
  async cancel(uuid: string): Promise<JobRow> {
    const job = await this.o.events.inTransaction(this.o.db, async (tx, batch) => {
      const row = await tx
        .updateTable('jobs')
        .set({
          state: 'Cancelled',
          finishedAt: new Date(),
          updatedAt: new Date(),
          progressMessage: 'cancelled',
        })
        .where('uuid', '=', uuid)
        .where('state', '=', 'Pending')
        .returningAll()
        .executeTakeFirst();
      if (row) batch.add(jobEvent(row, 'Cancelled'));
      return row;
    });
    if (job) {
      this.notify(job);
      return job;
    }
    const current = await this.load(uuid);
    if (!current) throw new CloudError('NotFound', 'JOB_NOT_FOUND', `job ${uuid} not found`);
    throw new CloudError(
      'Conflict',
      'JOB_NOT_CANCELLABLE',
      `job ${uuid} is ${current.state}; only a Pending job can be cancelled`,
      {
        details: { state: current.state },
      },
    );
  }

  /**
   * Claims the unfinished jobs whose owner is not a live node (stopped or fenced: membership
   * fences the nodes silent for longer than `deadAfterMs` first; or never set) with one conditional UPDATE, so two survivors never both take
   * a job; then runs them: Pending ones from the start, Running ones resumed or rolled back from
   * their journal. Returns how many it took.
   */
  async recover(deadAfterMs: number): Promise<number> {
    // only the jobs of nodes declared dead — stopped, or fenced by cluster/fence.ts, whose
    // sessions have ended — never those of a node that is merely late with its heartbeat
    const live = this.o.db.selectFrom('managementNodes').select('uuid').where('stoppedAt', 'is', null);
    const claimed = await this.o.db
      .updateTable('jobs')
      .set({ ownerNode: this.o.nodeId, updatedAt: new Date() })
      .where('state', 'in', ['Pending', 'Running'])
      .where((eb) => eb.or([eb('ownerNode', 'is', null), eb('ownerNode', 'not in', live)]))
      .returning(['uuid', 'queueKey', 'createdAt', 'state', 'kind'])
      .execute();
    claimed.sort((a, b) => new Date(a.createdAt).getTime() - new Date(b.createdAt).getTime());
    for (const job of claimed) {
      this.o.log.info({ job: job.uuid, kind: job.kind, state: job.state }, 'recovering job of a dead node');
      this.start(job.uuid, job.queueKey);
    }
    if (claimed.length === 0 && Date.now() - this.reclaimedAt < RECLAIM_EVERY_MS) return 0;
    this.reclaimedAt = Date.now();
    if (!this.stopping)
      for (const job of await this.orphans.find(this.o.db, this.o.nodeId)) {
        this.o.log.warn(
          { job: job.uuid, kind: job.kind },
          'starting a job of this node nothing ran (its admission’s answer was lost)',
        );
        this.start(job.uuid, job.queueKey);
      }
    for (const [name, reclaim] of this.reclaimers) {
      try {
        const n = await reclaim(deadAfterMs);
        if (n > 0)
          this.o.log.info({ reclaimer: name, rows: n }, 'reclaimed rows left transitional by dead owners');
      } catch (err) {
        this.o.log.warn({ err, reclaimer: name }, 'reclaiming transitional rows failed');
      }
    }
    return claimed.length;
  }

  /** Stops taking new work and waits (bounded) for jobs in flight; the rest are left for recovery. */
  async drain(timeoutMs: number): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  get running(): number {
    return this.inFlight.size;
  }

  private async runJob(uuid: string, queueKey: string): Promise<typeof QUEUE_BUSY | undefined> {
    if (this.stopping) return; // left Pending/Running for the next owner
    await this.slots.acquire();
    try {
      if (this.stopping) return;
      return await this.runClaimed(uuid, queueKey);
    } finally {
      this.slots.release();
    }
  }

  /** Claims the job for this node (see claimJob) and publishes its Running event. */
  private async claim(
    uuid: string,
    queueKey: string,
  ): Promise<{ row: JobRow; wasInterrupted: boolean } | typeof QUEUE_BUSY | undefined> {
    const queue = { key: queueKey, parallelism: this.o.queues.limitOf(queueKey) };
    const claimed = await this.durable(() => claimJob(this.o.db, this.o.nodeId, uuid, queue));
    if (!claimed || claimed === QUEUE_BUSY) return claimed;
    if (claimed.event) this.publishJobEvent(claimed.row, 'Running', claimed.event);
    return { row: claimed.row, wasInterrupted: claimed.wasInterrupted };
  }

  private publishJobEvent(job: JobRow, state: string, stored: StoredEvent): void {
    const e = jobEvent(job, state);
    this.o.events.publish([
      {
        id: String(stored.id),
        uuid: stored.uuid,
        at: stored.at instanceof Date ? stored.at : new Date(stored.at ?? Date.now()),
        type: e.type,
        resourceKind: e.resourceKind,
        resourceUuid: e.resourceUuid,
        accountUuid: e.accountUuid,
        jobUuid: e.jobUuid ?? null,
        data: e.data ?? {},
      },
    ]);
  }

  private async runClaimed(uuid: string, queueKey: string): Promise<typeof QUEUE_BUSY | undefined> {
    const claim = await this.claim(uuid, queueKey);
    if (claim === QUEUE_BUSY) return claim;
    if (!claim) return; // cancelled, finished, or taken by another node
    const { row: claimed, wasInterrupted } = claim;
    this.o.log.debug(
      { job: uuid, kind: claimed.kind, reqId: claimed.requestId, interrupted: wasInterrupted },
      'job started',
    );
    const def = this.flows.get(claimed.kind);
    const started = Date.now();
    let outcome: FlowOutcome;
    let finalJournal: FlowJournal | undefined;
    if (!def) {
      outcome = {
        ok: false,
        failure: toErrorBody(
          new CloudError('Internal', 'JOB_KIND_UNKNOWN', `no flow for job kind ${claimed.kind}`),
        ),
        rollbackFailures: [],
      };
    } else {
      const journal = (claimed.flow ?? { phase: 'forward', done: [], current: null, ctx: {} }) as FlowJournal;
      const rollBackRecovered = wasInterrupted && def.recovery === 'rollback' && journal.phase === 'forward';
      if (rollBackRecovered) {
        journal.phase = 'rollback';
        journal.failure = toErrorBody(
          new CloudError(
            'Unavailable',
            'JOB_INTERRUPTED',
            'the management node running this job stopped; the job was rolled back',
            {
              retryable: true,
            },
          ),
        );
      }
      outcome = await executeFlow(def, this.context(claimed), journal, {
        save: (j, p) => this.saveJournal(uuid, j, p),
        checkFault: (point) => this.o.faults.check(point),
        onRollback: (kind) => this.o.metrics?.rollback(kind),
        savesFinalJournal: true,
        recovered: rollBackRecovered,
        retry: this.retryAfterLostConnection(),
      });
      finalJournal = journal;
    }
    const finished = await this.finish(claimed, outcome, finalJournal);
    const fields = {
      job: uuid,
      kind: claimed.kind,
      reqId: claimed.requestId,
      resource: claimed.resourceUuid,
      ms: Date.now() - started,
    };
    if (outcome.ok) this.o.log.info(fields, 'job succeeded');
    else
      this.o.log.warn(
        { ...fields, error: outcome.failure, rollbackFailures: outcome.rollbackFailures },
        'job failed and was rolled back',
      );
    this.o.metrics?.jobFinished(claimed.kind, finished?.state ?? 'Unknown', (Date.now() - started) / 1000);
    if (finished) this.notify(finished);
  }

  private context(job: JobRow): StepContext<never, D> {
    return {
      db: this.o.db,
      deps: this.o.deps,
      job: {
        uuid: job.uuid,
        kind: job.kind,
        accountUuid: job.accountUuid,
        userUuid: job.userUuid,
        resourceKind: job.resourceKind,
        resourceUuid: job.resourceUuid,
        requestId: job.requestId,
      },
      params: job.params as never,
      data: {},
      emit: async (events: EventInput[]) => {
        const stored = await this.o.events.write(
          this.o.db,
          events.map((e) => ({ jobUuid: job.uuid, ...e })),
        );
        this.o.events.publish(stored);
      },
      owners: {
        gone: (jobUuid) => ownerGone(this.o.db, jobUuid, this.o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS),
        interrupted: (jobUuid) =>
          ownerInterrupted(this.o.db, jobUuid, this.o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS),
      },
      idle: async <T>(wait: () => Promise<T>): Promise<T> => {
        this.slots.release();
        try {
          return await wait();
        } finally {
          await this.slots.acquire();
        }
      },
      progress: async (percent, message) => {
        await this.o.db
          .updateTable('jobs')
          .set({
            progress: Math.max(0, Math.min(100, Math.round(percent))),
            progressMessage: message,
            updatedAt: new Date(),
          })
          .where('uuid', '=', job.uuid)
          .where('ownerNode', '=', this.o.nodeId)
          .execute();
      },
    };
  }

  private saveJournal(
    uuid: string,
    journal: FlowJournal,
    p?: { percent: number; message: string },
  ): Promise<void> {
    return this.durable(() => saveJournal(this.o.db, this.o.nodeId, uuid, journal, p));
  }

  /** Records the outcome (see finishJob) and publishes the job's final event. */
  private async finish(
    job: JobRow,
    outcome: FlowOutcome,
    journal: FlowJournal | undefined,
  ): Promise<JobRow | undefined> {
    const finished = await this.durable(() => finishJob(this.o.db, this.o.nodeId, job, outcome, journal));
    if (!finished) return undefined;
    this.publishJobEvent(finished.row, finished.row.state, finished.event);
    return finished.row;
  }

  private notify(job: JobRow): void {
    this.waiters.notify(job);
  }
}
