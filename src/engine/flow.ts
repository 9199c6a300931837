/**
 * Workflow chains: ordered named steps, each with an idempotent rollback (ZStack's FlowChain,
 * typed and durable). After every step the journal (done steps, the step in flight, the data
 * steps hand on) is written to the job row, so a node that dies mid-chain leaves enough for the
 * next node to resume it or roll it back.
 *
 * Rules every step must keep:
 * - `run` is idempotent when the flow's recovery is 'resume' (it may run again after a crash);
 * - `rollback` is idempotent and tolerates a `run` that never happened or stopped half-way,
 *   because the step in flight at a failure or crash is rolled back too;
 * - steps never hold a transaction across a call to a host: each writes with short statements.
 *
 * Journal writes cost a round trip each, so a step marked `local` (it changes only this
 * database) is journaled lazily: its entry goes out with the next save, before the next step
 * that is not local. The journal therefore still names every step with effects outside this
 * database before it starts. A local step must keep three more rules: its rollback is safe when
 * its run never happened; that rollback reads what to undo from the database, not from
 * `ctx.data` (a crash loses what an unjournaled step put there); and it is idempotent. Recovery
 * rolls back, besides the journaled steps, the local steps that may have run after the last
 * journal write.
 */
import type { Db } from '../db/pool.js';
import type { FlowJournal } from '../db/schema.js';
import { toErrorBody } from '../kernel/errors.js';
import type { EventInput } from './events.js';

export interface JobInfo {
  uuid: string;
  kind: string;
  accountUuid: string;
  userUuid: string | null;
  resourceKind: string | null;
  resourceUuid: string | null;
  requestId: string | null;
}

export interface StepContext<P, D> {
  db: Db;
  deps: D;
  job: JobInfo;
  /** the request this job was created from (as validated by the API) */
  params: P;
  /** journaled data passed to later steps and to rollbacks; must stay JSON-serialisable */
  data: Record<string, unknown>;
  /** records events in their own transaction (use EventBus.inTransaction for changes + events) */
  emit(events: EventInput[]): Promise<void>;
  /** reports progress inside the current step (0–100 of the whole job) */
  progress(percent: number, message: string): Promise<void>;
  /**
   * runs `wait` without holding one of the node's running-job slots, re-taking one after: for a
   * step that waits for another job (a VM waiting for its network's router, whose appliance VM
   * is a job too) — without it, enough such waiters fill every slot and the job they wait for
   * never runs. Absent in synthetic contexts: call `wait` directly then.
   */
  idle?<T>(wait: () => Promise<T>): Promise<T>;
  /**
   * liveness of the job owning a row this step waits for (engine/owners.ts): `gone` when that job
   * ended, vanished or its node died (then the waiter reclaims the row instead of waiting);
   * `interrupted` when it stopped without failing on its own. Absent in synthetic contexts.
   */
  owners?: {
    gone(jobUuid: string): Promise<boolean>;
    interrupted(jobUuid: string): Promise<boolean>;
  };
}

export interface FlowStep<P, D> {
  name: string;
  /** shown as the job's progress message while the step runs */
  describe?: string;
  run(ctx: StepContext<P, D>): Promise<void>;
  rollback?(ctx: StepContext<P, D>): Promise<void>;
  /**
   * the step changes only this database (no host or storage command), so its journal entry may
   * wait for the next save; see the rules above. A function decides each time, just before the
   * run (it may leave its decision in ctx.data for the run); recovery, which cannot know what it
   * decided, counts such a step as possibly local.
   */
  local?: boolean | ((ctx: StepContext<P, D>) => boolean);
}

export interface FlowDef<P = Record<string, unknown>, D = unknown> {
  /** the job kind this flow serves, e.g. `host.create` */
  kind: string;
  steps: FlowStep<P, D>[];
  /** what recovery does with a chain found unfinished after a crash */
  recovery: 'resume' | 'rollback';
  /** the job's result once every step succeeded (e.g. the created resource) */
  result?(ctx: StepContext<P, D>): Promise<unknown>;
  /** runs after a failed chain was rolled back (e.g. to mark a surviving resource Error) */
  afterRollback?(ctx: StepContext<P, D>, failure: unknown): Promise<void>;
}

export function newJournal(ctx: Record<string, unknown> = {}): FlowJournal {
  return { phase: 'forward', done: [], current: null, ctx };
}

export interface StepHooks {
  /** persists the journal (and progress) after each transition */
  save(journal: FlowJournal, progress?: { percent: number; message: string }): Promise<void>;
  /** fault injection: called before each forward action and each rollback */
  checkFault(point: string): Promise<void>;
  onRollback?(flow: string): void;
  /**
   * the caller persists the final journal of a successful chain together with the job's outcome
   * (one write less); without it the chain saves it itself
   */
  savesFinalJournal?: boolean;
  /**
   * the journal is a forward journal read back after its node died, now to be rolled back:
   * local steps after the last journaled point may have run without being recorded, so the
   * rollback undoes them too
   */
  recovered?: boolean;
  /**
   * an action threw: resolves true (after a pause) when it should be run again. Asked only where
   * running again is safe — rollbacks (idempotent) and the forward steps of a 'resume' chain
   * (idempotent too); the engine says yes for a lost database connection, for a bounded time
   */
  retry?(err: unknown, attempt: number, action: 'run' | 'rollback'): Promise<boolean>;
}

export type FlowOutcome =
  | { ok: true; result: unknown }
  | { ok: false; failure: unknown; rollbackFailures: unknown[] };

/** Runs (or continues, from its journal) a chain to success, or rolls it back to nothing. */
export async function executeFlow<P, D>(
  def: FlowDef<P, D>,
  ctx: StepContext<P, D>,
  journal: FlowJournal,
  hooks: StepHooks,
): Promise<FlowOutcome> {
  ctx.data = journal.ctx;
  const total = def.steps.length;
  if (journal.phase === 'forward') {
    try {
      for (const step of def.steps) {
        if (journal.done.includes(step.name)) continue;
        journal.current = step.name;
        if (!(typeof step.local === 'function' ? step.local(ctx) : step.local === true)) {
          const percent = Math.floor((journal.done.length / total) * 100);
          await hooks.save(journal, { percent, message: step.describe ?? step.name });
        }
        await hooks.checkFault(`step:${def.kind}/${step.name}`);
        await withRetry(() => step.run(ctx), def.recovery === 'resume' ? hooks : {}, 'run');
        journal.done.push(step.name);
        journal.current = null;
      }
      const result = def.result ? await def.result(ctx) : undefined;
      if (!hooks.savesFinalJournal) await hooks.save(journal, { percent: 100, message: 'done' });
      return { ok: true, result };
    } catch (err) {
      journal.phase = 'rollback';
      journal.failure = serialiseFailure(err);
      hooks.onRollback?.(def.kind);
      await hooks.save(journal);
    }
  }
  return rollBack(def, ctx, journal, hooks);
}

/** Rolls back the step in flight (if any) and then every done step, in reverse order. */
async function rollBack<P, D>(
  def: FlowDef<P, D>,
  ctx: StepContext<P, D>,
  journal: FlowJournal,
  hooks: StepHooks,
): Promise<FlowOutcome> {
  const failures: unknown[] = [...(journal.rollbackFailures ?? [])];
  // The step in flight and, after a crash, the local steps that may have run unrecorded join the
  // steps to undo in the journal itself, so the first rollback save records them: a node that dies
  // again during this rollback leaves a journal that still names every one of them (read back,
  // a rollback journal is not "recovered" and its unrecorded steps could not be found again).
  const unrecorded = hooks.recovered ? unrecordedLocalSteps(def, journal) : [];
  journal.done = [
    ...journal.done,
    ...(journal.current && !journal.done.includes(journal.current) ? [journal.current] : []),
    ...unrecorded,
  ];
  journal.current = null;
  const order = [...journal.done].reverse();
  for (const name of order) {
    const step = def.steps.find((s) => s.name === name);
    journal.current = name;
    await hooks.save(journal, { percent: 0, message: `rolling back ${name}` });
    if (step?.rollback) {
      try {
        await hooks.checkFault(`rollback:${def.kind}/${name}`);
        const rollback = step.rollback.bind(step);
        await withRetry(() => rollback(ctx), hooks, 'rollback');
      } catch (err) {
        failures.push({ step: name, ...serialiseFailure(err) });
      }
    }
    journal.done = journal.done.filter((d) => d !== name);
    journal.rolledBack = [...(journal.rolledBack ?? []), name];
    journal.current = null;
    journal.rollbackFailures = failures;
  }
  await hooks.save(journal, { percent: 100, message: 'rolled back' });
  if (def.afterRollback) {
    try {
      await def.afterRollback(ctx, journal.failure);
    } catch (err) {
      failures.push({ step: 'afterRollback', ...serialiseFailure(err) });
    }
  }
  return { ok: false, failure: journal.failure, rollbackFailures: failures };
}

/** Runs `action`, again as long as `hooks.retry` says so. */
async function withRetry(
  action: () => Promise<void>,
  hooks: Pick<StepHooks, 'retry'>,
  kind: 'run' | 'rollback',
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      return;
    } catch (err) {
      if (!hooks.retry || !(await hooks.retry(err, attempt, kind))) throw err;
    }
  }
}

/** For recovery: a step that is, or may have been, run without its own journal write. */
function mayBeLocal<P, D>(step: FlowStep<P, D>): boolean {
  return typeof step.local === 'function' || step.local === true;
}

/**
 * The local steps that may have run after the last journal write of a forward chain: those right
 * after the journaled step in flight (or after the last done step), up to the next step that is
 * not local (that one is always journaled before it starts).
 */
function unrecordedLocalSteps<P, D>(def: FlowDef<P, D>, journal: FlowJournal): string[] {
  const steps = def.steps;
  let i = journal.current
    ? steps.findIndex((s) => s.name === journal.current) + 1
    : steps.findIndex((s) => !journal.done.includes(s.name));
  if (i <= 0 && journal.current) return [];
  const names: string[] = [];
  for (; i >= 0 && i < steps.length; i++) {
    const step = steps[i]!;
    if (!mayBeLocal(step)) break;
    if (!journal.done.includes(step.name) && step.name !== journal.current) names.push(step.name);
  }
  return names;
}

function serialiseFailure(err: unknown): Record<string, unknown> {
  return { ...toErrorBody(err) };
}
