/**
 * ensureImageCache / releaseImageCache on a real database with a spy host driver that counts
 * commands: concurrent callers share one copy (one command, one reservation), failures leave no
 * entry and no reserved bytes, and a release never removes an entry someone else may use.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/database.js';
import type { AgentCommand, AgentRequest, AgentResponse } from '../../../contract/agent.js';
import { DriverRegistry, type HostAddress, type HostDriver } from '../../../drivers/port.js';
import { CloudError } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { type CacheTarget, ensureImageCache, releaseImageCache } from './cache.js';

const MiB = 1024 ** 2;

class SpyDriver implements HostDriver {
  calls: Record<string, number> = {};
  delayMs = 0;
  fail: CloudError | undefined;

  async send<C extends AgentCommand>(
    _host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    this.calls[command] = (this.calls[command] ?? 0) + 1;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail && command === 'image.cache') throw this.fail;
    if (command === 'image.cache') {
      const r = request as AgentRequest<'image.cache'>;
      return { path: `${r.storage.url}/imagecache/${r.imageUuid}`, size: r.size } as AgentResponse<C>;
    }
    return {} as AgentResponse<C>;
  }
}

let t: TestDatabase;
let spy: SpyDriver;
let drivers: DriverRegistry;
const account = newId();
let hosts: HostAddress[] = [];
let zone: string;
let cluster: string;

const image = (actualSize = 20 * MiB) => ({
  uuid: newId(),
  url: 'http://images.example/x.qcow2',
  size: 4 * actualSize,
  actualSize,
});

async function storage(type: 'local' | 'nfs', capacity: number, attach = true): Promise<string> {
  const uuid = newId();
  await t.db
    .insertInto('primaryStorages')
    .values({
      uuid,
      name: `ps-${uuid}`,
      accountUuid: account,
      type,
      url: `/ps/${uuid}`,
      zoneUuid: zone,
      capacityTotal: capacity,
    })
    .execute();
  if (attach) {
    await t.db
      .insertInto('primaryStorageClusters')
      .values({ primaryStorageUuid: uuid, clusterUuid: cluster })
      .execute();
    if (type === 'local') {
      await t.db
        .insertInto('primaryStorageHosts')
        .values(hosts.map((h) => ({ primaryStorageUuid: uuid, hostUuid: h.uuid, capacityTotal: capacity })))
        .execute();
    }
  }
  return uuid;
}

const used = async (ps: string) =>
  (
    await t.db
      .selectFrom('primaryStoragesWithCapacity')
      .select('capacityUsed')
      .where('uuid', '=', ps)
      .executeTakeFirstOrThrow()
  ).capacityUsed;
const hostUsed = async (ps: string, host: string) =>
  (
    await t.db
      .selectFrom('primaryStorageHosts')
      .select('capacityUsed')
      .where('primaryStorageUuid', '=', ps)
      .where('hostUuid', '=', host)
      .executeTakeFirstOrThrow()
  ).capacityUsed;
const entries = (ps: string) =>
  t.db.selectFrom('imageCache').selectAll().where('primaryStorageUuid', '=', ps).execute();
const shared = (ps: string): CacheTarget => ({ primaryStorageUuid: ps, hostUuid: null, host: hosts[0]! });
const onHost = (ps: string, i: number): CacheTarget => ({
  primaryStorageUuid: ps,
  hostUuid: hosts[i]!.uuid,
  host: hosts[i]!,
});
const codeOf = (err: unknown) => (err as CloudError).code;

before(async () => {
  t = await createTestDatabase({ max: 20 });
  zone = newId();
  cluster = newId();
  await t.db.insertInto('zones').values({ uuid: zone, name: 'z', accountUuid: account }).execute();
  await t.db
    .insertInto('clusters')
    .values({ uuid: cluster, name: 'c', zoneUuid: zone, hypervisorType: 'simulator', accountUuid: account })
    .execute();
  hosts = [1, 2].map((i) => ({ uuid: newId(), managementIp: `10.0.0.${i}`, hypervisorType: 'simulator' }));
  await t.db
    .insertInto('hosts')
    .values(
      hosts.map((h, i) => ({
        ...h,
        name: `h${i}`,
        zoneUuid: zone,
        clusterUuid: cluster,
        accountUuid: account,
        status: 'Connected' as const,
      })),
    )
    .execute();
});
after(() => t.drop());
beforeEach(() => {
  spy = new SpyDriver();
  drivers = new DriverRegistry({ simulator: spy });
});

describe('ensureImageCache', () => {
  test('50 concurrent callers for one target: one entry, one image.cache, capacity reserved once', async () => {
    const ps = await storage('nfs', 10 * 1024 * MiB);
    const img = image();
    spy.delayMs = 100;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => ensureImageCache(t.db, drivers, img, shared(ps))),
    );
    assert.equal(spy.calls['image.cache'], 1);
    assert.equal(results.filter((r) => r.created).length, 1, 'exactly one caller created it');
    assert.equal(new Set(results.map((r) => r.cacheUuid)).size, 1);
    assert.ok(results.every((r) => r.path === `/ps/${ps}/imagecache/${img.uuid}`));
    const rows = await entries(ps);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.state, 'Ready');
    assert.equal(rows[0]!.size, img.actualSize);
    assert.equal(rows[0]!.shared, true);
    assert.equal(await used(ps), img.actualSize);
    // a later caller takes the Ready entry without copying
    const again = await ensureImageCache(t.db, drivers, img, shared(ps));
    assert.deepEqual(again, { ...results[0]!, created: false });
    assert.equal(spy.calls['image.cache'], 1);
  });

  test('local storage: one entry per host, reserved on that host’s share', async () => {
    const ps = await storage('local', 1024 * MiB);
    const img = image();
    spy.delayMs = 50;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => ensureImageCache(t.db, drivers, img, onHost(ps, i % 2))),
    );
    assert.equal(spy.calls['image.cache'], 2);
    assert.equal((await entries(ps)).length, 2);
    assert.equal(await hostUsed(ps, hosts[0]!.uuid), img.actualSize);
    assert.equal(await hostUsed(ps, hosts[1]!.uuid), img.actualSize);
    assert.equal(await used(ps), 2 * img.actualSize);
  });

  test('a failing copy: every concurrent caller fails with IMAGE_CACHE_FAILED, no entry, nothing reserved', async () => {
    const ps = await storage('nfs', 1024 * MiB);
    spy.delayMs = 200;
    spy.fail = new CloudError('Unavailable', 'HOST_UNREACHABLE', 'link down', { retryable: true });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => ensureImageCache(t.db, drivers, image(), shared(ps))),
    );
    // each call above uses its own image: 50 copies, all failing
    assert.ok(results.every((r) => r.status === 'rejected' && codeOf(r.reason) === 'IMAGE_CACHE_FAILED'));
    const img = image();
    const sameTarget = await Promise.allSettled(
      Array.from({ length: 50 }, () => ensureImageCache(t.db, drivers, img, shared(ps))),
    );
    assert.ok(sameTarget.every((r) => r.status === 'rejected' && codeOf(r.reason) === 'IMAGE_CACHE_FAILED'));
    assert.equal(spy.calls['image.cache'], 51, 'the 50 callers of one image waited for the one copy');
    // the caller that copied reports the host's error; those that waited for it say so
    const reasons = sameTarget.map((r) => (r as PromiseRejectedResult).reason as CloudError);
    const copier = reasons.filter((e) => e.details?.causeCode === 'HOST_UNREACHABLE');
    assert.equal(copier.length, 1);
    assert.equal(copier[0]!.reason, 'Unavailable');
    assert.equal(copier[0]!.retryable, true);
    assert.ok(reasons.every((e) => e.retryable));
    assert.deepEqual(await entries(ps), []);
    assert.equal(await used(ps), 0);
  });

  test('a full storage: PRIMARY_STORAGE_FULL naming what is needed and available; no entry, no command', async () => {
    const ps = await storage('nfs', 10 * MiB);
    const err = await ensureImageCache(t.db, drivers, image(20 * MiB), shared(ps)).catch((e) => e);
    assert.equal(codeOf(err), 'PRIMARY_STORAGE_FULL');
    assert.equal(err.details.needed, 20 * MiB);
    assert.equal(err.details.available, 10 * MiB);
    assert.equal(spy.calls['image.cache'], undefined);
    assert.deepEqual(await entries(ps), []);
    const local = await storage('local', 10 * MiB);
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(20 * MiB), onHost(local, 1)).catch((e) => e)),
      'PRIMARY_STORAGE_FULL',
    );
    assert.equal(await hostUsed(local, hosts[1]!.uuid), 0);
  });

  test('refusals name why: disabled storage, host without a share, target that does not fit the storage type', async () => {
    const disabled = await storage('nfs', 1024 * MiB);
    await t.db
      .updateTable('primaryStorages')
      .set({ state: 'Disabled' })
      .where('uuid', '=', disabled)
      .execute();
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(), shared(disabled)).catch((e) => e)),
      'PRIMARY_STORAGE_NOT_ENABLED',
    );
    const unattached = await storage('local', 1024 * MiB, false);
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(), onHost(unattached, 0)).catch((e) => e)),
      'PRIMARY_STORAGE_NOT_ON_HOST',
    );
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(), shared(unattached)).catch((e) => e)),
      'IMAGE_CACHE_TARGET_INVALID',
    );
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(), onHost(disabled, 0)).catch((e) => e)),
      'IMAGE_CACHE_TARGET_INVALID',
    );
    assert.equal(
      codeOf(await ensureImageCache(t.db, drivers, image(), shared(newId())).catch((e) => e)),
      'PRIMARY_STORAGE_NOT_FOUND',
    );
    assert.equal(spy.calls['image.cache'], undefined);
  });
});

describe('releaseImageCache', () => {
  test('removes the creator’s entry (uncache + release); idempotent', async () => {
    const ps = await storage('local', 1024 * MiB);
    const made = await ensureImageCache(t.db, drivers, image(), onHost(ps, 0));
    assert.equal(made.created, true);
    await releaseImageCache(t.db, drivers, made.cacheUuid);
    assert.deepEqual(await entries(ps), []);
    assert.equal(await hostUsed(ps, hosts[0]!.uuid), 0);
    assert.equal(spy.calls['image.uncache'], 1);
    await releaseImageCache(t.db, drivers, made.cacheUuid);
    assert.equal(spy.calls['image.uncache'], 1);
  });

  test('keeps an entry handed to another caller, or one a volume uses', async () => {
    const ps = await storage('nfs', 1024 * MiB);
    const img = image();
    const mine = await ensureImageCache(t.db, drivers, img, shared(ps));
    const theirs = await ensureImageCache(t.db, drivers, img, shared(ps));
    assert.equal(theirs.created, false);
    await releaseImageCache(t.db, drivers, mine.cacheUuid);
    assert.equal((await entries(ps)).length, 1, 'another caller may be cloning from it');

    const other = image();
    const cached = await ensureImageCache(t.db, drivers, other, shared(ps));
    const volume = newId();
    await t.db
      .insertInto('volumes')
      .values({
        uuid: volume,
        name: 'v',
        accountUuid: account,
        type: 'Root',
        primaryStorageUuid: ps,
        imageUuid: other.uuid,
        size: 1,
        state: 'Ready',
      })
      .execute();
    await releaseImageCache(t.db, drivers, cached.cacheUuid);
    assert.equal((await entries(ps)).length, 2, 'a volume uses it');
    await t.db
      .updateTable('volumes')
      .set({ state: 'Deleted', deletedAt: new Date() })
      .where('uuid', '=', volume)
      .execute();
    await releaseImageCache(t.db, drivers, cached.cacheUuid);
    assert.equal((await entries(ps)).length, 1, 'a deleted volume does not keep it');
    assert.equal(await used(ps), img.actualSize);
  });
});
