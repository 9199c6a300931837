/**
 * A crash during recovery must not wedge the node (issue 8, item 1): a burst of VM creates on
 * local storage (one image copy per host, every other create on that host waiting for it) is
 * accepted, the node is killed with SIGKILL while copies are in flight, restarted, and killed
 * again a second or so into its recovery — then restarted once more. Within a bound, every job
 * has ended and no row is left in a transitional state: no image-cache entry Downloading or
 * Deleting (the rows the dead node's copies left, which waiters used to wait out for 10 minutes
 * while holding every running slot), no VM, volume, host or router mid-operation, and the
 * capacity/address invariants hold. Several rounds, each with a fresh image so each has copies
 * in flight.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { DbHandle } from '../../src/db/pool.js';
import { TRANSITIONAL_STATES } from '../../src/kernel/vm-states.js';
import { assertInvariants } from '../support/invariants.js';
import { Api, type TestNode } from '../support/node.js';
import {
  CRASH_PASSWORD,
  crashHarness,
  type JobRow,
  jobsOf,
  noBackendsOf,
  type ServerProcess,
  sleep,
  summary,
  unfinished,
  waitUntil,
} from './crash-fixtures.js';
import { buildVmEnv, GiB, ok } from './vm-env.js';

const ROUNDS = 3;
const BURST = 100;
const HOSTS = 12;
/** every job must have ended this long after the last restart */
const RECOVERY_BOUND_MS = 90_000;
const START_MS = 120_000;

const harness = crashHarness();
after(() => harness.cleanup());

/** Rows some operation left half-way: what no finished system may hold. */
async function transitionalRows(observer: DbHandle): Promise<Record<string, unknown[]>> {
  const rows: Record<string, unknown[]> = {
    imageCache: await observer.db
      .selectFrom('imageCache')
      .select(['uuid', 'state', 'jobUuid'])
      .where('state', '!=', 'Ready')
      .execute(),
    vms: await observer.db
      .selectFrom('vms')
      .select(['uuid', 'state', 'task'])
      .where((eb) => eb.or([eb('state', 'in', [...TRANSITIONAL_STATES]), eb('task', 'is not', null)]))
      .execute(),
    volumes: await observer.db
      .selectFrom('volumes')
      .select(['uuid', 'state'])
      .where('state', '=', 'Creating')
      .execute(),
    hosts: await observer.db
      .selectFrom('hosts')
      .select(['uuid', 'status'])
      .where('status', '=', 'Connecting')
      .execute(),
    routers: await observer.db
      .selectFrom('virtualRouters')
      .select(['uuid', 'state'])
      .where('state', 'in', ['Creating', 'Destroying'])
      .execute(),
    jobs: (await unfinished(observer)).map((j) => ({ uuid: j.uuid, kind: j.kind, state: j.state })),
  };
  for (const key of Object.keys(rows)) if (rows[key]!.length === 0) delete rows[key];
  return rows;
}

const downloading = async (observer: DbHandle) =>
  (await observer.db.selectFrom('imageCache').select('uuid').where('state', '=', 'Downloading').execute())
    .length;

/** Slow copies (so kills find them in flight) and starts (so chains spread over their steps). */
async function slowDown(api: Api, copyMs: number): Promise<void> {
  for (const fault of [
    { point: 'command:image.cache', delayMs: copyMs },
    { point: 'command:vm.start', delayMs: 300 },
  ]) {
    const res = await api.post('/v1/simulator/faults', fault);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
}

test('SIGKILL after a burst is accepted and again during recovery, in rounds: every job ends, nothing left transitional', async (t) => {
  const { db, observer, url, start } = await harness.setup('crash-burst');
  let node: ServerProcess = start();
  await node.ready(START_MS);
  let api = await new Api(url).login('admin', CRASH_PASSWORD);
  const env = await buildVmEnv({ admin: api } as unknown as TestNode, {
    prefix: 'burst',
    hosts: HOSTS,
    hostCpu: 128,
    hostMemory: 512 * GiB,
    storage: 'local',
    capacity: 4096 * GiB,
  });
  const restart = async () => {
    await node.killHard();
    await noBackendsOf(observer, db.name);
    node = start();
    await node.ready(START_MS);
    api = await new Api(url).login('admin', CRASH_PASSWORD);
  };

  for (let round = 0; round < ROUNDS; round++) {
    // a new image: every host copies it again, so this round's kills find copies in flight
    const image = (
      await ok({ admin: api } as unknown as TestNode, 'POST', '/v1/images', {
        name: `burst-image-${round}`,
        url: `http://images.example/burst-${round}.qcow2?size=${2 * GiB}&actualSize=${GiB}`,
        format: 'qcow2',
        backupStorageUuid: (await api.get('/v1/backup-storages?q=name=burst-bs')).body.items[0].uuid,
        isPublic: true,
      })
    ).resourceUuid as string;
    // copies outlast the burst's admission however slow the machine: the kill finds them in flight
    await slowDown(api, 60_000);
    const accepted = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        api.post('/v1/vms', {
          name: `r${round}-vm-${i}`,
          imageUuid: image,
          instanceOfferingUuid: env.small,
        }),
      ),
    );
    for (const r of accepted) assert.equal(r.status, 202, JSON.stringify(r.body));

    // first kill: copies in flight, chains running
    let seen = '';
    await waitUntil(
      `round ${round}: copies in flight`,
      async () => {
        const open = await unfinished(observer);
        const copies = await downloading(observer);
        seen = `${copies} downloading, ${JSON.stringify(summary(open))}`;
        if (open.length === 0) {
          const mine = (await jobsOf(observer)).filter((j) => j.kind === 'vm.create');
          const codes: Record<string, number> = {};
          for (const j of mine.slice(-BURST))
            codes[`${j.state} ${j.error?.code ?? ''}`] =
              (codes[`${j.state} ${j.error?.code ?? ''}`] ?? 0) + 1;
          assert.fail(
            `every job finished before the kill: ${JSON.stringify(codes)} ${JSON.stringify(mine.at(-1)?.error)}`,
          );
        }
        return copies >= 3 && open.some((j) => j.state === 'Running');
      },
      60_000,
      () => `\nlast seen: ${seen}${node.tail()}`,
    );
    await restart();
    t.diagnostic(
      `round ${round}: restarted after the first kill (${await downloading(observer)} downloading)`,
    );

    // second kill, a second or so into the recovery (its copies slowed down again)
    await slowDown(api, 2500);
    await sleep(1000 + Math.floor(Math.random() * 1000));
    const open = await unfinished(observer);
    t.diagnostic(
      `round ${round}: second kill with ${await downloading(observer)} downloading, open ${JSON.stringify(summary(open))}`,
    );
    await restart();

    // the third incarnation: everything ends within the bound, nothing left half-way
    const since = Date.now();
    let left: Record<string, unknown[]> = {};
    await waitUntil(
      `round ${round}: every job ended and no row transitional`,
      async () => {
        left = await transitionalRows(observer);
        return Object.keys(left).length === 0;
      },
      RECOVERY_BOUND_MS,
      () => `\nleft: ${JSON.stringify(left).slice(0, 2000)}${node.tail()}`,
    );
    const jobs: JobRow[] = (await jobsOf(observer)).filter((j) => j.kind === 'vm.create');
    t.diagnostic(
      `round ${round}: all ended ${Date.now() - since} ms after the restart: ${JSON.stringify(summary(jobs))}`,
    );
    for (const j of jobs) {
      assert.ok(j.state === 'Succeeded' || j.state === 'Failed', `job ${j.uuid} ended ${j.state}`);
      if (j.state === 'Failed') {
        assert.equal(j.flow?.phase, 'rollback', `failed ${j.uuid} was rolled back`);
        assert.deepEqual(j.flow?.done, [], `failed ${j.uuid}: every done step undone`);
        assert.equal(j.error?.details?.rollbackFailures, undefined, `${j.uuid} rolled back cleanly`);
      }
    }
    await assertInvariants(observer.db);
  }

  // the node still takes work: a create on a fresh image copies and runs
  const last = await api.job('POST', '/v1/vms', {
    name: 'after-the-crashes',
    imageUuid: env.image,
    instanceOfferingUuid: env.small,
  });
  assert.equal(last.state, 'Succeeded', JSON.stringify(last));
  assert.equal(await node.interrupt(), 0, 'SIGINT stops the node cleanly');
});
