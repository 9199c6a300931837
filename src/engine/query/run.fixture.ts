/**
 * Shared by the run tests: kind schemas over the real zones/clusters/hosts tables (plus a table
 * of its own for booleans, numerics and a self-relation) and one seeded database per test file.
 */
import { after, before } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.js';
import type { Database } from '../../db/schema.js';
import { newId } from '../../kernel/ids.js';
import { parseListQuery, type QueryScope, type RawQuery } from './parse.js';
import { runListQuery } from './run.js';
import { createRegistry, type KindSchema } from './schema.js';

export const A = newId();
export const B = newId();
export const userA: QueryScope = { accountUuid: A, isAdmin: false };
export const userB: QueryScope = { accountUuid: B, isAdmin: false };
export const admin: QueryScope = { accountUuid: newId(), isAdmin: true };

const enabled = { enum: ['Enabled', 'Disabled'] } as const;
export const zones: KindSchema = {
  kind: 'zones',
  table: 'zones',
  visibility: 'owned',
  taggable: true,
  fields: { uuid: 'uuid', name: 'string', description: 'string', state: enabled, accountUuid: 'uuid' },
  relations: { clusters: { kind: 'clusters', local: 'uuid', remote: 'zoneUuid', many: true } },
  defaultSort: 'name',
};
export const clusters: KindSchema = {
  kind: 'clusters',
  table: 'clusters',
  visibility: 'owned',
  taggable: true,
  fields: { uuid: 'uuid', name: 'string', zoneUuid: 'uuid', state: enabled, accountUuid: 'uuid' },
  relations: {
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
    hosts: { kind: 'hosts', local: 'uuid', remote: 'clusterUuid', many: true },
  },
  defaultSort: 'name',
};
export const hosts: KindSchema = {
  kind: 'hosts',
  table: 'hosts',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    clusterUuid: 'uuid',
    state: { enum: ['Enabled', 'Disabled', 'Maintenance'] },
    cpuTotal: 'int',
    memoryTotal: 'int',
    createdAt: 'timestamp',
    accountUuid: 'uuid',
  },
  relations: {
    cluster: { kind: 'clusters', local: 'clusterUuid', remote: 'uuid' },
    zone: { kind: 'zones', local: 'zoneUuid', remote: 'uuid' },
  },
  defaultSort: 'name',
};
// the same zones table seen as a shared kind, and an admin-only kind
export const sharedZones: KindSchema = {
  ...zones,
  kind: 'shared-zones',
  visibility: 'shared',
  relations: {},
};
export const nodes: KindSchema = {
  kind: 'management-nodes',
  table: 'managementNodes',
  visibility: 'admin',
  fields: { uuid: 'uuid', name: 'string' },
};
// a table created by this test only: booleans, numerics and a self-relation
export const items: KindSchema = {
  kind: 'items',
  table: 'testItems' as KindSchema['table'],
  visibility: 'owned',
  fields: { uuid: 'uuid', name: 'string', flag: 'boolean', ratio: 'number', accountUuid: 'uuid' },
  relations: { parent: { kind: 'items', local: 'parentUuid', remote: 'uuid' } },
  defaultSort: 'name',
};
export const registry = createRegistry([zones, clusters, hosts, sharedZones, nodes, items]);

let t: TestDatabase;

/** The database of the running test file (set by useSeededDatabase). */
export function db(): TestDatabase {
  return t;
}
export const id: Record<string, string> = {};

export async function list(schema: KindSchema, raw: RawQuery, scope: QueryScope = admin) {
  const query = parseListQuery(raw, schema, registry, scope);
  return runListQuery(t.db, registry, schema, query, scope);
}

export async function names(schema: KindSchema, raw: RawQuery, scope: QueryScope = admin): Promise<string[]> {
  return (await list(schema, raw, scope)).items.map((i) => String(i.name));
}

async function seed(db: Kysely<Database>): Promise<void> {
  for (const n of [
    'z1',
    'z2',
    'z3',
    'c1',
    'c2',
    'c3',
    'c4',
    'c5',
    'h1',
    'h2',
    'h3',
    'web-1',
    'web-2',
    'h6',
  ]) {
    id[n] = newId();
  }
  await db
    .insertInto('zones')
    .values([
      { uuid: id.z1!, name: 'z1', state: 'Enabled', accountUuid: A, description: 'main' },
      { uuid: id.z2!, name: 'z2', state: 'Disabled', accountUuid: A, description: null },
      { uuid: id.z3!, name: 'z3', state: 'Enabled', accountUuid: B, description: null },
    ])
    .execute();
  const cluster = (n: string, zone: string, account: string) => ({
    uuid: id[n]!,
    name: n,
    zoneUuid: id[zone]!,
    hypervisorType: 'simulator',
    state: 'Enabled' as const,
    accountUuid: account,
  });
  await db
    .insertInto('clusters')
    .values([cluster('c1', 'z1', A), cluster('c2', 'z1', A), cluster('c3', 'z2', A), cluster('c4', 'z3', B)])
    .execute();
  // B's cluster inside A's zone: A must not see it through nested conditions
  await db
    .insertInto('clusters')
    .values(cluster('c5', 'z1', B))
    .execute();
  const host = (
    n: string,
    c: string,
    zone: string,
    account: string,
    cpu: number,
    state: 'Enabled' | 'Disabled' | 'Maintenance',
    description: string | null,
    month: number,
  ) => ({
    uuid: id[n]!,
    name: n,
    description,
    zoneUuid: id[zone]!,
    clusterUuid: id[c]!,
    hypervisorType: 'simulator',
    managementIp: `10.0.0.${month}`,
    state,
    status: 'Connected' as const,
    cpuTotal: cpu,
    cpuUsed: 0,
    memoryTotal: cpu * 2 ** 32,
    memoryUsed: 0,
    accountUuid: account,
    createdAt: new Date(Date.UTC(2024, month - 1, 1)),
  });
  await db
    .insertInto('hosts')
    .values([
      host('h1', 'c1', 'z1', A, 8, 'Enabled', 'rack 1', 1),
      host('h2', 'c1', 'z1', A, 16, 'Disabled', null, 2),
      host('h3', 'c2', 'z1', A, 16, 'Maintenance', 'rack 2', 3),
      host('web-1', 'c3', 'z2', A, 32, 'Enabled', null, 4),
      host('web-2', 'c4', 'z3', B, 64, 'Enabled', "it's 100%", 5),
      host('h6', 'c5', 'z1', B, 4, 'Disabled', null, 6),
    ])
    .execute();
  const tag = (resource: string, account: string, key: string, value: string | null) => ({
    uuid: newId(),
    resourceKind: resource.startsWith('z') ? 'zones' : 'clusters',
    resourceUuid: id[resource]!,
    accountUuid: account,
    key,
    value,
  });
  await db
    .insertInto('tags')
    .values([
      tag('c1', A, 'env', 'prod'),
      tag('c2', A, 'env', 'dev'),
      tag('c3', A, 'team', null),
      tag('c5', B, 'env', 'prod'),
      tag('z1', A, 'region', 'eu=west'),
    ])
    .execute();

  await sql`create table test_items (uuid uuid primary key, name text not null, parent_uuid uuid,
    flag boolean, ratio numeric, account_uuid uuid not null)`.execute(db);
  const item = (name: string, parent: string | null, flag: boolean | null, ratio: number | null) => {
    id[name] = newId();
    const p = parent === null ? null : id[parent]!;
    return sql`insert into test_items values (${id[name]}, ${name}, ${p}, ${flag}, ${ratio}, ${A})`.execute(
      db,
    );
  };
  await item('root', null, true, 0.25);
  await item('mid', 'root', false, 0.5);
  await item('leaf', 'mid', null, 0.75);
  await item('leaf2', 'mid', true, null);
}

/** Registers before/after hooks: a fresh database seeded once for the whole file. */
export function useSeededDatabase(): void {
  before(async () => {
    t = await createTestDatabase({ max: 4 });
    await seed(t.db);
  });
  after(async () => {
    await t?.drop();
  });
}
