/**
 * Values an answer shows once and nothing stores: a generated password, a generated webhook
 * secret. An admission attaches them to the job row it returns (in memory only: a WeakMap, never
 * the `jobs` table, an event or a log line); the HTTP answer to that one request carries them in
 * `secrets`, and every later read of the job does not.
 */
import type { JobRow } from './jobs.js';

const attached = new WeakMap<JobRow, Record<string, string>>();

export function attachSecrets(job: JobRow, secrets: Record<string, string>): JobRow {
  attached.set(job, { ...(attached.get(job) ?? {}), ...secrets });
  return job;
}

export function secretsOf(job: JobRow): Record<string, string> | undefined {
  return attached.get(job);
}
