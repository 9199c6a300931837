/**
 * `publicColumn`: rows of an owned kind that every account sees (public images), in lists,
 * counts, nested conditions and single-row reads; and nothing changes for kinds without it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import { newId } from '../../kernel/ids.js';
import { parseListQuery, type QueryScope, type RawQuery } from './parse.js';
import { getVisibleRow, runListQuery } from './run.js';
import { createRegistry, type KindSchema } from './schema.js';

const A = newId();
const B = newId();
const userA: QueryScope = { accountUuid: A, isAdmin: false };
const userB: QueryScope = { accountUuid: B, isAdmin: false };
const admin: QueryScope = { accountUuid: newId(), isAdmin: true };

const images: KindSchema = {
  kind: 'images',
  table: 'images',
  visibility: 'owned',
  publicColumn: 'isPublic',
  fields: {
    uuid: 'uuid',
    name: 'string',
    isPublic: 'boolean',
    backupStorageUuid: 'uuid',
    accountUuid: 'uuid',
  },
  relations: { storage: { kind: 'stores', local: 'backupStorageUuid', remote: 'uuid' } },
  defaultSort: 'name',
};
const privateImages: KindSchema = { ...images, kind: 'private-images', publicColumn: undefined };
// owned storages (only for this test) whose images may be another account's public ones
const stores: KindSchema = {
  kind: 'stores',
  table: 'backupStorages',
  visibility: 'owned',
  fields: { uuid: 'uuid', name: 'string', accountUuid: 'uuid' },
  relations: {
    images: { kind: 'images', local: 'uuid', remote: 'backupStorageUuid', many: true },
    privateImages: { kind: 'private-images', local: 'uuid', remote: 'backupStorageUuid', many: true },
  },
  defaultSort: 'name',
};
const registry = createRegistry([images, privateImages, stores]);

let t: TestDatabase;
const id: Record<string, string> = {};

async function names(schema: KindSchema, raw: RawQuery, scope: QueryScope): Promise<string[]> {
  const q = parseListQuery(raw, schema, registry, scope);
  return (await runListQuery(t.db, registry, schema, q, scope)).items.map((r) => r.name as string);
}

before(async () => {
  t = await createTestDatabase({ max: 4 });
  for (const [name, account] of [
    ['store-a', A],
    ['store-b', B],
  ] as const) {
    id[name] = newId();
    await t.db
      .insertInto('backupStorages')
      .values({ uuid: id[name]!, name, accountUuid: account, type: 'simulator', url: `sim://${name}` })
      .execute();
  }
  const rows = [
    ['a-private', A, false, 'store-a'],
    ['a-public', A, true, 'store-a'],
    ['b-private', B, false, 'store-b'],
    ['b-public', B, true, 'store-a'],
  ] as const;
  for (const [name, account, isPublic, store] of rows) {
    id[name] = newId();
    await t.db
      .insertInto('images')
      .values({
        uuid: id[name]!,
        name,
        accountUuid: account,
        isPublic,
        format: 'raw',
        mediaType: 'RootVolumeTemplate',
        platform: 'Linux',
        guestOsType: null,
        url: 'http://x/y',
        state: 'Ready',
        backupStorageUuid: id[store]!,
        deletedAt: null,
      })
      .execute();
  }
});
after(() => t.drop());

describe('public rows', () => {
  test('a non-admin lists its own rows and the public ones; the admin lists all', async () => {
    assert.deepEqual(await names(images, {}, userA), ['a-private', 'a-public', 'b-public']);
    assert.deepEqual(await names(images, {}, userB), ['a-public', 'b-private', 'b-public']);
    assert.deepEqual(await names(images, {}, admin), ['a-private', 'a-public', 'b-private', 'b-public']);
    assert.deepEqual(await names(images, { q: 'name~=b-%' }, userA), ['b-public']);
    assert.deepEqual(await names(images, { q: 'isPublic=false' }, userA), ['a-private']);
    const q = parseListQuery({ count: 'true', limit: '1' }, images, registry, userB);
    assert.equal((await runListQuery(t.db, registry, images, q, userB)).total, 3);
  });

  test('one row: public rows are visible to everyone, private ones only to their owner', async () => {
    assert.equal((await getVisibleRow(t.db, images, id['b-public']!, userA))?.name, 'b-public');
    assert.equal(await getVisibleRow(t.db, images, id['b-private']!, userA), undefined);
    assert.equal((await getVisibleRow(t.db, images, id['b-private']!, userB))?.name, 'b-private');
    assert.equal((await getVisibleRow(t.db, images, id['b-private']!, admin))?.name, 'b-private');
  });

  test('nested conditions see public rows through relations the same way', async () => {
    // store-a (A's) holds B's public image: A finds its store through it, but not B's private one
    assert.deepEqual(await names(stores, { q: 'images.name=b-public' }, userA), ['store-a']);
    assert.deepEqual(await names(stores, { q: 'images.name=b-private' }, userA), []);
    assert.deepEqual(await names(stores, { q: 'images.name=b-private' }, userB), ['store-b']);
    // and the outer kind's own scope still applies: B does not see A's store
    assert.deepEqual(await names(stores, { q: 'images.name=b-public' }, userB), []);
    assert.deepEqual(await names(images, { q: 'storage.name=store-a' }, userA), [
      'a-private',
      'a-public',
      'b-public',
    ]);
  });

  test('without publicColumn an owned kind stays strictly per account', async () => {
    assert.deepEqual(await names(privateImages, {}, userA), ['a-private', 'a-public']);
    assert.equal(await getVisibleRow(t.db, privateImages, id['b-public']!, userA), undefined);
    assert.deepEqual(await names(stores, { q: 'privateImages.name=b-public' }, userA), []);
  });
});
