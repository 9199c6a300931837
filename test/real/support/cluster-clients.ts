/**
 * A client's side of jobs racing on one resource across cluster nodes
 * (test/real/cluster-haproxy-1000): send until accepted — a refusal because the resource is busy
 * (`409`, retryable) is sent again, as its answer says — and wait for the job; then check that
 * the jobs ran in the resource's queue one at a time.
 */
import assert from 'node:assert/strict';
import type { DbHandle } from '../../../src/db/pool.js';
import { sleep } from '../../scenario/crash-fixtures.js';
import type { Api } from '../../support/node.js';

/** POSTs `body` to `path` until it is accepted (202), then waits for the job; its uuid. */
export async function sendUntilAccepted(api: Api, path: string, body: unknown): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await api.post(path, body);
    if (res.status === 202) {
      const uuid = res.body.uuid as string;
      for (;;) {
        const job = await api.get(`/v1/jobs/${uuid}?wait=true`);
        if (job.status === 200 && (job.body.state === 'Succeeded' || job.body.state === 'Failed'))
          return uuid;
        if (job.status !== 200) await sleep(200);
      }
    }
    assert.equal(res.status, 409, `${path}: ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.retryable, true, `${path}: ${JSON.stringify(res.body)}`);
    assert.ok(attempt < 600, `${path}: refused ${attempt} times`);
    await sleep(100);
  }
}

/**
 * Asserts that the jobs `uuids` all ran in queue `queueKey`, ended, and that their
 * [startedAt, finishedAt] never overlap; what ran when, for the test's diagnostics.
 */
export async function assertOneAtATime(
  observer: DbHandle,
  uuids: string[],
  queueKey: string,
): Promise<string> {
  const rows = await observer.db
    .selectFrom('jobs')
    .select(['uuid', 'kind', 'state', 'startedAt', 'finishedAt', 'ownerNode', 'queueKey'])
    .where('uuid', 'in', uuids)
    .orderBy('startedAt')
    .execute();
  assert.equal(rows.length, uuids.length);
  for (const r of rows) {
    assert.equal(r.queueKey, queueKey, `${r.kind} ran in ${r.queueKey}`);
    assert.ok(r.state === 'Succeeded' || r.state === 'Failed', `${r.kind} ended ${r.state}`);
  }
  for (let i = 1; i < rows.length; i++) {
    const before = rows[i - 1]!;
    const next = rows[i]!;
    assert.ok(
      new Date(next.startedAt!).getTime() >= new Date(before.finishedAt!).getTime(),
      `${next.kind} started ${new Date(next.startedAt!).toISOString()} before ${before.kind} finished ${new Date(before.finishedAt!).toISOString()}`,
    );
  }
  const t0 = new Date(rows[0]!.startedAt!).getTime();
  const nodes = new Set(rows.map((r) => r.ownerNode)).size;
  return `${rows
    .map(
      (r) =>
        `${r.kind} ${r.state} ${new Date(r.startedAt!).getTime() - t0}–${new Date(r.finishedAt!).getTime() - t0} ms`,
    )
    .join(', ')} on ${nodes} nodes`;
}
