/**
 * Async commands: send the request, get a Job back (202), and either show it or follow it to the
 * end. Following polls GET /v1/jobs/{uuid} rather than using `?wait=true`, so progress can be shown
 * and a long job never hits the server's 60 s wait limit. A job that fails makes the command fail.
 */
import ora from 'ora';
import { JOB_STATES } from '../contract/common.js';
import { KINDS, type KindContract } from '../contract/kinds.js';
import type { Ctx } from './context.js';
import { ApiError, ConnectionError, JobFailedError, toErrorInfo } from './errors.js';
import type { ApiClient } from './http.js';
import { type Format, type JobView, renderJobAccepted, renderResource } from './output.js';

export type JobState = (typeof JOB_STATES)[number];

export interface JobLike extends JobView {
  state: JobState;
  progress: number;
  progressMessage?: string | null;
  resourceKind?: string | null;
  result?: unknown;
  error?: unknown;
}

const TERMINAL: ReadonlySet<string> = new Set<JobState>(['Succeeded', 'Failed', 'Cancelled']);
export const POLL_MS = 300;
/** consecutive poll failures tolerated: a management node restarting must not fail the command */
const POLL_RETRIES = 10;

export function jobOf(body: unknown): JobLike | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.uuid !== 'string' || typeof b.state !== 'string') return undefined;
  if (!JOB_STATES.some((s) => s === b.state)) return undefined;
  return { ...(b as object), progress: typeof b.progress === 'number' ? b.progress : 0 } as JobLike;
}

export function isTerminal(job: JobLike): boolean {
  return TERMINAL.has(job.state);
}

function progressText(job: JobLike): string {
  const message = job.progressMessage ? ` ${job.progressMessage}` : '';
  return `${job.kind ?? 'job'} ${job.state} ${job.progress}%${message}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll(client: ApiClient, uuid: string): Promise<JobLike> {
  for (let attempt = 0; ; attempt++) {
    try {
      const job = jobOf((await client.get(`/v1/jobs/${encodeURIComponent(uuid)}`)).body);
      if (!job) throw new Error(`the server answered GET /v1/jobs/${uuid} with something that is not a job`);
      return job;
    } catch (err) {
      const transient = err instanceof ConnectionError || (err instanceof ApiError && err.status >= 502);
      if (!transient || attempt >= POLL_RETRIES) throw err;
      await sleep(POLL_MS * 2);
    }
  }
}

/** Follows a job to a terminal state, showing progress: a spinner for people, lines for logs. */
export async function waitForJob(ctx: Ctx, first: JobLike, intervalMs = POLL_MS): Promise<JobLike> {
  if (isTerminal(first)) return first;
  const spinner = ctx.interactive
    ? ora({ text: progressText(first), stream: process.stderr }).start()
    : undefined;
  let last = '';
  const show = (job: JobLike) => {
    const text = progressText(job);
    if (spinner) spinner.text = text;
    else if (text !== last) ctx.err(text);
    last = text;
  };
  // Ctrl-C leaves the job running on the server: say how to pick it up again.
  const onInterrupt = () => {
    spinner?.stop();
    ctx.err(`stopped waiting; job ${first.uuid} goes on: nimbus job wait ${first.uuid}`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    show(first);
    let job = first;
    while (!isTerminal(job)) {
      await sleep(intervalMs);
      job = await poll(ctx.client(), first.uuid);
      show(job);
    }
    if (spinner) {
      if (job.state === 'Succeeded') spinner.succeed(progressText(job));
      else spinner.fail(progressText(job));
    }
    return job;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    spinner?.stop();
  }
}

function kindOfJob(job: JobLike, fallback: KindContract | undefined): KindContract | undefined {
  return fallback ?? KINDS.find((k) => k.kind === job.resourceKind || k.singular === job.resourceKind);
}

/** Prints a finished job's outcome, or throws so the command exits non-zero. */
export function reportFinished(ctx: Ctx, job: JobLike, format: Format, kind?: KindContract): void {
  if (job.state !== 'Succeeded') throw new JobFailedError(job.uuid, job.state, toErrorInfo(job.error));
  const result = job.result;
  if (typeof result === 'object' && result !== null) {
    ctx.out(renderResource(kindOfJob(job, kind), result, format, { color: ctx.color }));
  } else if (format === 'table') {
    ctx.out(`job ${job.uuid} Succeeded${job.kind ? ` (${job.kind})` : ''}`);
  } else {
    ctx.out(renderResource(undefined, job, format));
  }
}

export interface JobCommand {
  method: string;
  path: string;
  body?: unknown;
  wait: boolean;
  format: Format;
  kind?: KindContract;
}

export async function runJobCommand(ctx: Ctx, cmd: JobCommand): Promise<void> {
  const res = await ctx
    .client()
    .request(cmd.method, cmd.path, cmd.body === undefined ? {} : { body: cmd.body });
  const job = jobOf(res.body);
  if (!job) {
    // Not every server answer is a job (a 204, say); show whatever came back.
    ctx.out(
      res.body === undefined ? 'done' : renderResource(cmd.kind, res.body, cmd.format, { color: ctx.color }),
    );
    return;
  }
  // A job that already ended (a fast server, or one honouring ?wait) is reported like a waited one.
  if (!cmd.wait && !isTerminal(job)) {
    ctx.out(renderJobAccepted(job, res.body, cmd.format));
    return;
  }
  reportFinished(ctx, await waitForJob(ctx, job), cmd.format, cmd.kind);
}
