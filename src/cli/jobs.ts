/**
 * Async commands: send the request, get a Job back (202), and either show it or follow it to the
 * end. Following polls GET /v1/jobs/{uuid} rather than using `?wait=true`, so progress can be shown
 * and a long job never hits the server's 60 s wait limit. A job that fails makes the command fail.
 */
import { JOB_STATES, KINDS, type KindContract } from './catalog.js';
import type { Ctx } from './context.js';
import { ApiError, ConnectionError, JobFailedError, LocalError, toErrorInfo } from './errors.js';
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
export async function waitForJob(
  ctx: Ctx,
  first: JobLike,
  timeoutMs?: number,
  intervalMs = POLL_MS,
): Promise<JobLike> {
  if (isTerminal(first)) return first;
  // the spinner's library loads only when a person is watching (start-up time)
  const spinner = ctx.interactive
    ? (await import('ora')).default({ text: progressText(first), stream: process.stderr }).start()
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
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  try {
    show(first);
    let job = first;
    while (!isTerminal(job)) {
      if (Date.now() >= deadline) {
        spinner?.stop();
        throw new LocalError(
          'WAIT_TIMEOUT',
          `job ${first.uuid} still ${job.state} after ${Math.round((timeoutMs ?? 0) / 1000)} s; it goes on: nimbus job wait ${first.uuid}`,
        );
      }
      await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
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

/**
 * Prints a finished job's outcome, or throws so the command exits non-zero. `show` prints the
 * resource the way `get` does (fetched again, so the shape and order are get's, not the job's).
 */
export async function reportFinished(
  ctx: Ctx,
  job: JobLike,
  format: Format,
  kind?: KindContract,
  show?: (kind: KindContract, resourceUuid: string) => Promise<void>,
): Promise<void> {
  if (job.state !== 'Succeeded') throw new JobFailedError(job.uuid, job.state, toErrorInfo(job.error));
  const result = job.result;
  const resourceUuid =
    typeof job.resourceUuid === 'string'
      ? job.resourceUuid
      : typeof result === 'object' && result !== null && 'uuid' in result && typeof result.uuid === 'string'
        ? result.uuid
        : undefined;
  const resultKind =
    KINDS.find((k) => k.kind === job.resourceKind || k.singular === job.resourceKind) ?? kind;
  if (show && resultKind && resourceUuid && typeof result === 'object' && result !== null) {
    try {
      await show(resultKind, resourceUuid);
      return;
    } catch (err) {
      // gone already (an expunge, a delete that ended it): the job's own result is all there is
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }
  if (typeof result === 'object' && result !== null) {
    ctx.out(await renderResource(kindOfJob(job, kind), result, format, { color: ctx.colorOut }));
  } else if (format === 'table') {
    ctx.out(`job ${job.uuid} Succeeded${job.kind ? ` (${job.kind})` : ''}`);
  } else if (format === 'value' || format === 'csv') {
    ctx.out(job.uuid);
  } else {
    ctx.out(await renderResource(undefined, job, format));
  }
}

export interface JobCommand {
  method: string;
  path: string;
  body?: unknown;
  wait: boolean;
  format: Format;
  kind?: KindContract;
  timeoutMs?: number;
  show?: (kind: KindContract, resourceUuid: string) => Promise<void>;
}

/**
 * Values the server shows only in this answer (a generated password or secret): on stderr, so
 * stdout stays the resource in the format asked for; no later read can show them again.
 */
function showSecrets(ctx: Ctx, body: unknown): void {
  const secrets = (body as { secrets?: unknown } | undefined)?.secrets;
  if (typeof secrets !== 'object' || secrets === null) return;
  for (const [name, value] of Object.entries(secrets))
    ctx.err(`${name}: ${String(value)}  (shown once: Nimbus does not keep it)`);
}

export async function runJobCommand(ctx: Ctx, cmd: JobCommand): Promise<void> {
  const res = await ctx
    .client()
    .request(cmd.method, cmd.path, cmd.body === undefined ? {} : { body: cmd.body });
  const job = jobOf(res.body);
  showSecrets(ctx, res.body);
  if (!job) {
    // Not every server answer is a job (a 204, say); show whatever came back.
    ctx.out(
      res.body === undefined
        ? 'done'
        : await renderResource(cmd.kind, res.body, cmd.format, { color: ctx.colorOut }),
    );
    return;
  }
  // A job that already ended (a fast server, or one honouring ?wait) is reported like a waited one.
  if (!cmd.wait && !isTerminal(job)) {
    ctx.out(await renderJobAccepted(job, res.body, cmd.format));
    return;
  }
  await reportFinished(ctx, await waitForJob(ctx, job, cmd.timeoutMs), cmd.format, cmd.kind, cmd.show);
}
