/**
 * The image cache on primary storage: the first VM that needs an image on a storage (on a host,
 * for local storage) copies it there from backup storage; later VMs clone from the copy.
 *
 * One entry per place (storage, host, image), enforced by a unique index. The entry and its
 * capacity reservation are created in one transaction, so an entry always has its bytes
 * reserved, and the bytes go back in the transaction that deletes it: capacity is reserved and
 * released exactly once however many callers race. States: Downloading (being copied) → Ready;
 * Deleting (being removed; nobody may take it; it disappears).
 *
 * An entry handed to a caller other than its creator is `shared`: the creator's rollback leaves
 * it alone (that caller may be about to clone from it). Entries whose image was expunged stay
 * until removed with the storage's `clean-image-cache` action: volumes cloned from them may
 * still need them.
 *
 * An entry in a transitional state (Downloading, Deleting) names its owner, `job_uuid`: the job
 * copying or removing it. A caller that finds another job's entry in transition waits outside
 * the node's running-job slots (StepContext.idle) and only while that job lives: an entry whose
 * job ended, vanished or whose node died is reclaimed on the spot (Downloading: deleted with its
 * reservation; Deleting: its removal finished), by the waiter or by recovery's sweep
 * (`reclaimImageCache`), whichever comes first. A rollback finds the entries of its own job by
 * `job_uuid`, so an entry made by a step that a crash cut short is undone too.
 */
import { sql } from 'kysely';
import type { StorageRef } from '../../../contract/agent.js';
import type { Db } from '../../../db/pool.js';
import type { Executor } from '../../../db/transaction.js';
import type { DriverRegistry, HostAddress } from '../../../drivers/port.js';
import { liveJobs } from '../../../engine/owners.js';
import { CloudError, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { imageSourceOf } from '../backup-storage/image-source.js';
import { isLocal, releaseStorage, reserveStorage, storageRef } from '../primary-storage/capacity.js';

export interface CacheTarget {
  primaryStorageUuid: string;
  /** local storage: the host */
  hostUuid: string | null;
  /** who runs image.cache */
  host: HostAddress;
}

export interface CachedImage {
  uuid: string;
  url: string;
  size: number;
  actualSize: number;
}

/** who calls, and how it waits for another job's entry (a VM create passes its StepContext's) */
export interface CacheCaller {
  /** the calling job: it owns an entry it creates or removes */
  jobUuid?: string | null;
  /** runs a wait without holding a running-job slot (StepContext.idle) */
  idle?<T>(wait: () => Promise<T>): Promise<T>;
  /** liveness of an entry's owner job (StepContext.owners); without it owners count as alive */
  owners?: {
    gone(jobUuid: string): Promise<boolean>;
    interrupted(jobUuid: string): Promise<boolean>;
  };
}

/** a last bound on waiting for a live owner's copy (the wait holds no running slot) */
export const CACHE_WAIT_LIMIT_MS = 10 * 60_000;
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 500;
/** how often a waiter asks whether the entry's owner still lives */
const OWNER_CHECK_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Transitional = 'Downloading' | 'Deleting';

function placeOf(db: Db, image: CachedImage, target: CacheTarget) {
  return db
    .selectFrom('imageCache')
    .select(['uuid', 'state', 'path', 'shared', 'jobUuid'])
    .where('primaryStorageUuid', '=', target.primaryStorageUuid)
    .where('imageUuid', '=', image.uuid)
    .where('hostUuid', target.hostUuid === null ? 'is' : '=', target.hostUuid)
    .executeTakeFirst();
}

/** Why a reservation on the target was refused, as the clearest error we can name. */
async function refusal(exec: Executor, target: CacheTarget, size: number): Promise<CloudError> {
  const ps = await exec
    .selectFrom('primaryStoragesWithCapacity')
    .select(['state', 'capacityAvailable'])
    .where('uuid', '=', target.primaryStorageUuid)
    .executeTakeFirst();
  if (!ps) return notFound('primary-storage', target.primaryStorageUuid);
  const details = { primaryStorageUuid: target.primaryStorageUuid, hostUuid: target.hostUuid, needed: size };
  if (ps.state !== 'Enabled') {
    return new CloudError(
      'Conflict',
      'PRIMARY_STORAGE_NOT_ENABLED',
      `primary storage ${target.primaryStorageUuid} is ${ps.state}`,
      {
        details: { ...details, state: ps.state },
      },
    );
  }
  let available = ps.capacityAvailable;
  if (target.hostUuid) {
    const share = await exec
      .selectFrom('primaryStorageHosts as h')
      .innerJoin('primaryStorages as p', 'p.uuid', 'h.primaryStorageUuid')
      .select(['h.capacityTotal', 'h.capacityUsed', 'p.overProvisioningRatio'])
      .where('h.primaryStorageUuid', '=', target.primaryStorageUuid)
      .where('h.hostUuid', '=', target.hostUuid)
      .executeTakeFirst();
    if (!share) {
      return new CloudError(
        'Conflict',
        'PRIMARY_STORAGE_NOT_ON_HOST',
        `host ${target.hostUuid} has no share of local storage ${target.primaryStorageUuid} (its cluster is not attached)`,
        { details },
      );
    }
    available = Math.floor(share.capacityTotal * share.overProvisioningRatio) - share.capacityUsed;
  }
  return new CloudError(
    'Conflict',
    'PRIMARY_STORAGE_FULL',
    `primary storage ${target.primaryStorageUuid}${target.hostUuid ? ` on host ${target.hostUuid}` : ''} has ${available} bytes available; the image needs ${size}`,
    { details: { ...details, available } },
  );
}

/** Inserts the entry with its reservation; undefined when another caller's entry is there. */
async function createEntry(
  db: Db,
  image: CachedImage,
  target: CacheTarget,
  size: number,
  jobUuid: string | null,
): Promise<string | undefined> {
  const uuid = newId();
  return db.transaction().execute(async (tx) => {
    const inserted = await tx
      .insertInto('imageCache')
      .values({
        uuid,
        primaryStorageUuid: target.primaryStorageUuid,
        hostUuid: target.hostUuid,
        imageUuid: image.uuid,
        size,
        state: 'Downloading',
        jobUuid,
      })
      .onConflict((oc) => oc.doNothing())
      .returning('uuid')
      .executeTakeFirst();
    if (!inserted) return undefined;
    if (!(await reserveStorage(tx, target, size))) throw await refusal(tx, target, size);
    return uuid;
  });
}

/**
 * Deletes an entry and gives its bytes back, in one transaction (so at most once); with `owner`,
 * only while that job still owns it.
 */
async function dropEntry(
  db: Db,
  cacheUuid: string,
  states: Array<'Downloading' | 'Ready' | 'Deleting'>,
  owner?: { jobUuid: string | null },
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    let q = tx.deleteFrom('imageCache').where('uuid', '=', cacheUuid).where('state', 'in', states);
    if (owner) q = q.where(sql<boolean>`job_uuid is not distinct from ${owner.jobUuid}`);
    const row = await q.returning(['primaryStorageUuid', 'hostUuid', 'size']).executeTakeFirst();
    if (row) await releaseStorage(tx, row, row.size);
    return row !== undefined;
  });
}

function copyFailed(err: unknown, image: CachedImage, target: CacheTarget): CloudError {
  const cause = err instanceof CloudError ? err : undefined;
  return new CloudError(
    cause?.reason ?? 'Internal',
    'IMAGE_CACHE_FAILED',
    `copying image ${image.uuid} to primary storage ${target.primaryStorageUuid} failed: ${err instanceof Error ? err.message : String(err)}`,
    {
      details: {
        imageUuid: image.uuid,
        primaryStorageUuid: target.primaryStorageUuid,
        hostUuid: target.hostUuid,
        ...(cause ? { causeCode: cause.code } : {}),
      },
      retryable: cause?.retryable ?? false,
      cause: err,
    },
  );
}

async function copy(
  db: Db,
  drivers: DriverRegistry,
  image: CachedImage,
  target: CacheTarget,
  storage: StorageRef,
  cacheUuid: string,
): Promise<string> {
  try {
    // from the backup storage that holds it (an agent storage serves the file itself)
    const source = await imageSourceOf(db, image);
    const res = await drivers.send(target.host, 'image.cache', {
      imageUuid: image.uuid,
      url: source.url,
      size: image.size,
      storage,
      ...(source.authorization ? { authorization: source.authorization } : {}),
    });
    const done = await db
      .updateTable('imageCache')
      .set({ state: 'Ready', path: res.path })
      .where('uuid', '=', cacheUuid)
      .where('state', '=', 'Downloading')
      .executeTakeFirst();
    if (Number(done.numUpdatedRows) === 0) {
      throw new CloudError(
        'Conflict',
        'IMAGE_CACHE_GONE',
        'the cache entry was removed while the image was copied (storage detached or cleaned)',
      );
    }
    return res.path;
  } catch (err) {
    // the host cleans up a failed copy itself (commands are idempotent); the record goes here
    await dropEntry(db, cacheUuid, ['Downloading']);
    throw copyFailed(err, image, target);
  }
}

/**
 * Makes sure the image is cached on the target: the first caller reserves the image's size on
 * the storage (its actualSize: the bytes the copy takes; its size when that is unknown) and asks
 * the host to copy it (image.cache); concurrent callers for the same target wait for that copy
 * instead of copying twice — outside the running-job slots (`caller.idle`) and only while the
 * copying job lives (`caller.owners`): an entry whose owner is gone is reclaimed and this caller
 * makes the copy itself; so does a caller whose awaited copy vanished because its job was
 * interrupted (once). Idempotent. `created` tells whether THIS call created the entry (so only
 * its rollback undoes it). Throws PRIMARY_STORAGE_FULL (or PRIMARY_STORAGE_NOT_ENABLED /
 * _NOT_ON_HOST) when the bytes cannot be reserved, IMAGE_CACHE_FAILED when the copy fails (a
 * caller that was waiting for that copy gets the same code), IMAGE_CACHE_TIMEOUT when a live
 * owner's copy took longer than CACHE_WAIT_LIMIT_MS.
 */
export async function ensureImageCache(
  db: Db,
  drivers: DriverRegistry,
  image: CachedImage,
  target: CacheTarget,
  caller: CacheCaller = {},
): Promise<{ cacheUuid: string; path: string; created: boolean }> {
  const storage = await storageRef(db, target.primaryStorageUuid);
  if (isLocal(storage.type) !== (target.hostUuid !== null)) {
    throw new CloudError(
      'Invalid',
      'IMAGE_CACHE_TARGET_INVALID',
      isLocal(storage.type)
        ? `primary storage ${storage.uuid} is local: name the host the image is cached on`
        : `primary storage ${storage.uuid} is ${storage.type} (shared): its cache belongs to no host`,
      { details: { primaryStorageUuid: storage.uuid, hostUuid: target.hostUuid } },
    );
  }
  const size = image.actualSize > 0 ? image.actualSize : image.size;
  const deadline = Date.now() + CACHE_WAIT_LIMIT_MS;
  const jobUuid = caller.jobUuid ?? null;
  // the entry we waited for (its owner), and whether we already took over once after one vanished
  let waitedOn: { state: Transitional; jobUuid: string | null } | undefined;
  let tookOver = false;
  for (;;) {
    const entry = await placeOf(db, image, target);
    if (entry?.state === 'Ready') {
      if (entry.shared) return { cacheUuid: entry.uuid, path: entry.path!, created: false };
      // mark it shared before using it, so its creator's rollback can no longer remove it
      const taken = await db
        .updateTable('imageCache')
        .set({ shared: true })
        .where('uuid', '=', entry.uuid)
        .where('state', '=', 'Ready')
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 1)
        return { cacheUuid: entry.uuid, path: entry.path!, created: false };
      continue;
    }
    if (!entry) {
      if (waitedOn?.state === 'Downloading') {
        // the copy we waited for is gone: it failed (so do we), unless its job was interrupted
        const owner = waitedOn.jobUuid;
        const interrupted = owner !== null && caller.owners ? await caller.owners.interrupted(owner) : false;
        if (!interrupted || tookOver) {
          throw new CloudError(
            'Internal',
            'IMAGE_CACHE_FAILED',
            `copying image ${image.uuid} to primary storage ${storage.uuid} failed (the copy this request waited for)`,
            {
              details: { imageUuid: image.uuid, primaryStorageUuid: storage.uuid, hostUuid: target.hostUuid },
              retryable: true,
            },
          );
        }
        tookOver = true;
      }
      waitedOn = undefined;
      const cacheUuid = await createEntry(db, image, target, size, jobUuid);
      if (cacheUuid)
        return { cacheUuid, path: await copy(db, drivers, image, target, storage, cacheUuid), created: true };
      continue; // another caller's entry appeared in the meantime
    }
    const state = entry.state as Transitional;
    if (entry.jobUuid !== null && entry.jobUuid === jobUuid) {
      // our own entry, left by an earlier run of this step (a retry after a lost connection)
      await reclaimEntry(db, drivers, { uuid: entry.uuid, state, jobUuid: entry.jobUuid });
      continue;
    }
    if (entry.jobUuid !== null && caller.owners && (await caller.owners.gone(entry.jobUuid))) {
      await reclaimEntry(db, drivers, { uuid: entry.uuid, state, jobUuid: entry.jobUuid });
      waitedOn = undefined;
      continue;
    }
    waitedOn = { state, jobUuid: entry.jobUuid };
    const wait = () => awaitChange(db, entry.uuid, state, entry.jobUuid, deadline, caller);
    const still = await (caller.idle ? caller.idle(wait) : wait());
    if (still) {
      throw new CloudError(
        'Timeout',
        'IMAGE_CACHE_TIMEOUT',
        `image ${image.uuid} is still ${state} on primary storage ${storage.uuid} after ${CACHE_WAIT_LIMIT_MS / 1000} s`,
        { details: { cacheUuid: entry.uuid, state, jobUuid: entry.jobUuid }, retryable: true },
      );
    }
  }
}

/**
 * Polls an entry until it leaves `state` (or goes, or changes owner), its owner is gone, or the
 * deadline passes; resolves true only in the last case.
 */
async function awaitChange(
  db: Db,
  cacheUuid: string,
  state: Transitional,
  jobUuid: string | null,
  deadline: number,
  caller: CacheCaller,
): Promise<boolean> {
  let delay = POLL_MIN_MS;
  let ownerCheckedAt = Date.now();
  for (;;) {
    await sleep(delay);
    delay = Math.min(delay * 2, POLL_MAX_MS);
    const now = await db
      .selectFrom('imageCache')
      .select(['state', 'jobUuid'])
      .where('uuid', '=', cacheUuid)
      .executeTakeFirst();
    if (!now || now.state !== state || now.jobUuid !== jobUuid) return false;
    if (jobUuid !== null && caller.owners && Date.now() - ownerCheckedAt >= OWNER_CHECK_MS) {
      ownerCheckedAt = Date.now();
      if (await caller.owners.gone(jobUuid)) return false;
    }
    if (Date.now() > deadline) return true;
  }
}

/**
 * Takes back an entry whose owner is gone: a copy in flight (Downloading) is deleted with its
 * reservation (the host's half copy is overwritten by the next image.cache); a removal
 * (Deleting) is finished. Conditional on the entry still being that owner's, so a waiter and
 * recovery racing for it reclaim it once.
 */
async function reclaimEntry(
  db: Db,
  drivers: DriverRegistry,
  entry: { uuid: string; state: Transitional; jobUuid: string | null },
): Promise<void> {
  if (entry.state === 'Downloading') {
    await dropEntry(db, entry.uuid, ['Downloading'], { jobUuid: entry.jobUuid });
    return;
  }
  await finishRemoval(db, drivers, entry.uuid);
}

/** image.uncache on a host that reaches the entry's storage (if any), then delete and release. */
async function finishRemoval(db: Db, drivers: DriverRegistry, cacheUuid: string): Promise<void> {
  const entry = await db
    .selectFrom('imageCache')
    .select(['primaryStorageUuid', 'hostUuid', 'imageUuid'])
    .where('uuid', '=', cacheUuid)
    .where('state', '=', 'Deleting')
    .executeTakeFirst();
  if (!entry) return;
  const host = await hostFor(db, entry);
  // no host reaches a storage detached from every cluster: the record goes, the copy stays on it
  if (host) {
    await drivers.send(host, 'image.uncache', {
      imageUuid: entry.imageUuid,
      storage: await storageRef(db, entry.primaryStorageUuid),
    });
  }
  await dropEntry(db, cacheUuid, ['Deleting']);
}

/** A host that can reach the entry's storage: its own host (local), else any Connected host of an attached cluster. */
async function hostFor(
  db: Db,
  entry: { primaryStorageUuid: string; hostUuid: string | null },
): Promise<HostAddress | undefined> {
  let q = db.selectFrom('hosts as h').select(['h.uuid', 'h.managementIp', 'h.hypervisorType']);
  if (entry.hostUuid) return q.where('h.uuid', '=', entry.hostUuid).executeTakeFirst();
  q = q
    .innerJoin('primaryStorageClusters as pc', 'pc.clusterUuid', 'h.clusterUuid')
    .where('pc.primaryStorageUuid', '=', entry.primaryStorageUuid)
    .where('h.status', '=', 'Connected');
  return q.orderBy('h.uuid').limit(1).executeTakeFirst();
}

/**
 * Removes an entry no volume uses (a non-deleted volume with its image on its storage, and host
 * for local storage): mark Deleting → image.uncache → delete and release. Re-running finishes a
 * removal that stopped half-way. `includeShared` also removes entries handed to other callers.
 * Returns whether the entry is gone.
 */
export async function removeImageCacheEntry(
  db: Db,
  drivers: DriverRegistry,
  cacheUuid: string,
  opts: { includeShared: boolean; jobUuid?: string | null },
): Promise<boolean> {
  let q = db
    .updateTable('imageCache as c')
    .set({ state: 'Deleting', jobUuid: opts.jobUuid ?? null })
    .where('c.uuid', '=', cacheUuid)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('volumes as v')
            .select('v.uuid')
            .whereRef('v.imageUuid', '=', 'c.imageUuid')
            .whereRef('v.primaryStorageUuid', '=', 'c.primaryStorageUuid')
            .where((v) => v.or([v('c.hostUuid', 'is', null), v('v.hostUuid', '=', v.ref('c.hostUuid'))]))
            .where('v.deletedAt', 'is', null)
            .where('v.state', '!=', 'Deleted'),
        ),
      ),
    );
  if (!opts.includeShared) q = q.where('c.shared', '=', false);
  const entry = await q.returning(['c.primaryStorageUuid', 'c.hostUuid', 'c.imageUuid']).executeTakeFirst();
  if (!entry) {
    const still = await db
      .selectFrom('imageCache')
      .select('uuid')
      .where('uuid', '=', cacheUuid)
      .executeTakeFirst();
    return still === undefined;
  }
  await finishRemoval(db, drivers, cacheUuid);
  return true;
}

/**
 * Rollback of ensureImageCache when `created`: removes the entry (image.uncache + release its
 * capacity) unless a volume is using it or it was handed to another caller; idempotent.
 */
export async function releaseImageCache(
  db: Db,
  drivers: DriverRegistry,
  cacheUuid: string,
  jobUuid: string | null = null,
): Promise<void> {
  await removeImageCacheEntry(db, drivers, cacheUuid, { includeShared: false, jobUuid });
}

/**
 * Rollback of every entry a job created and nobody else took (found by `job_uuid`, so also one
 * whose creating step a crash cut short before the journal knew it): removed like
 * releaseImageCache; idempotent.
 */
export async function releaseImageCachesOf(db: Db, drivers: DriverRegistry, jobUuid: string): Promise<void> {
  const mine = await db
    .selectFrom('imageCache')
    .select('uuid')
    .where('jobUuid', '=', jobUuid)
    .where('shared', '=', false)
    .execute();
  for (const e of mine) await releaseImageCache(db, drivers, e.uuid, jobUuid);
}

/**
 * Recovery's sweep (engine reclaimer): every entry left Downloading or Deleting by a job that is
 * no longer alive (ended, vanished, on a dead node; or no owner recorded) is reclaimed as a
 * waiter would (see reclaimEntry). Entries of jobs this node just took over are alive again and
 * left to those jobs' rollbacks. Returns how many it reclaimed.
 */
export async function reclaimImageCache(
  db: Db,
  drivers: DriverRegistry,
  deadAfterMs: number,
): Promise<number> {
  const orphans = await db
    .selectFrom('imageCache')
    .select(['uuid', 'state', 'jobUuid'])
    .where('state', 'in', ['Downloading', 'Deleting'])
    .where((eb) => eb.or([eb('jobUuid', 'is', null), eb('jobUuid', 'not in', liveJobs(db, deadAfterMs))]))
    .execute();
  let n = 0;
  for (const e of orphans) {
    await reclaimEntry(db, drivers, { uuid: e.uuid, state: e.state as Transitional, jobUuid: e.jobUuid });
    n++;
  }
  return n;
}
