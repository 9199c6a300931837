/**
 * What a node's SIGKILL under load must leave (issue 10, docs/cluster.md), shared by
 * cluster-kill (150 creates straight at the nodes) and test/real/cluster-haproxy-1000 (1,000
 * through HAProxy): the dead node's hosts get a live owner within dead-after plus one heartbeat
 * and are pinged by it; every job ends Succeeded or Failed with a clean rollback; no row is left
 * transitional; nothing is finished in the dead node's name after its death.
 */
import assert from 'node:assert/strict';
import { ownedBy } from '../../src/cluster/ownership.js';
import type { DbHandle } from '../../src/db/pool.js';
import { DEAD_AFTER_MS, HEARTBEAT_MS, transitionalRows } from './cluster-fixtures.js';
import { type JobRow, jobsOf, summary, waitUntil } from './crash-fixtures.js';

/** The hosts node `uuid` owns, as every node computes it (rendezvous over the live nodes). */
export async function hostsOwnedBy(observer: DbHandle, uuid: string): Promise<string[]> {
  const rows = await observer.db
    .selectFrom('hosts')
    .select('uuid')
    .where(ownedBy('hosts', uuid, DEAD_AFTER_MS))
    .execute();
  return rows.map((r) => r.uuid);
}

/**
 * Waits until the victim owns no host; asserts that took at most dead-after plus one heartbeat
 * (plus 1 s for this polling, 150 ms, and its queries on a loaded machine) and that the
 * survivors own every one of `hostCount` hosts exactly once. Returns the ms since the kill.
 */
export async function assertHostsMoved(
  observer: DbHandle,
  victim: string,
  survivors: string[],
  killedAt: number,
  hostCount: number,
): Promise<number> {
  const moved = await waitUntil(
    'the dead node’s hosts owned by live nodes',
    async () => ((await hostsOwnedBy(observer, victim)).length === 0 ? Date.now() - killedAt : undefined),
    30_000,
  );
  assert.ok(moved <= DEAD_AFTER_MS + HEARTBEAT_MS + 1000, `hosts moved after ${moved} ms`);
  const owners = await Promise.all(survivors.map((s) => hostsOwnedBy(observer, s)));
  assert.equal(owners.flat().length, hostCount, 'every host has exactly one live owner');
  assert.equal(new Set(owners.flat()).size, hostCount, 'no host has two owners');
  return moved;
}

/** Waits until the hosts `owned` (the victim's) were pinged after the victim was declared dead. */
export async function assertHostsPinged(observer: DbHandle, owned: string[], killedAt: number) {
  const since = new Date(killedAt + DEAD_AFTER_MS);
  await waitUntil('the dead node’s hosts pinged by their new owners', async () => {
    const rows = await observer.db
      .selectFrom('hosts')
      .select('uuid')
      .where('uuid', 'in', owned.length > 0 ? owned : ['00000000-0000-0000-0000-000000000000'])
      .where((eb) => eb.or([eb('lastSeenAt', 'is', null), eb('lastSeenAt', '<', since)]))
      .execute();
    return rows.length === 0;
  });
}

/**
 * Waits (up to `timeoutMs`) until no job is unfinished and no row transitional, then asserts
 * that every job in `mine` ended Succeeded, or Failed with every done step undone and no
 * rollback failure. Returns those jobs.
 */
export async function assertAllEndedCleanly(
  observer: DbHandle,
  mine: (job: JobRow) => boolean,
  timeoutMs = 120_000,
): Promise<JobRow[]> {
  let left: Record<string, unknown[]> = {};
  await waitUntil(
    'every job ended and no row transitional',
    async () => {
      left = await transitionalRows(observer);
      return Object.keys(left).length === 0;
    },
    timeoutMs,
    () =>
      `\nleft: ${JSON.stringify(left).slice(0, 2000)}\njobs: ${JSON.stringify(summary((left.jobs as JobRow[]) ?? []))}`,
  );
  const jobs = (await jobsOf(observer)).filter(mine);
  for (const j of jobs) {
    assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.uuid} ended ${j.state}`);
    if (j.state === 'Failed') {
      assert.equal(j.flow?.phase, 'rollback', `failed ${j.uuid} was rolled back`);
      assert.deepEqual(j.flow?.done, [], `failed ${j.uuid}: every done step undone`);
      assert.equal(j.error?.details?.rollbackFailures, undefined, `${j.uuid} rolled back cleanly`);
    }
  }
  return jobs;
}

/** No job was finished in the victim's name after its death (fencing: it wrote nothing more). */
export async function assertNothingFinishedBy(observer: DbHandle, victim: string, killedAt: number) {
  const late = await observer.db
    .selectFrom('jobs')
    .select(['uuid', 'finishedAt'])
    .where('ownerNode', '=', victim)
    .where('finishedAt', '>', new Date(killedAt))
    .execute();
  assert.deepEqual(late, [], 'no job was finished in the victim’s name after its death');
}
