/**
 * What people read instead of uuids: a list's rows gain the names of the resources they refer to
 * (`hostUuid` → a `host` column with the host's name), a VM's addresses and tags, and the owning
 * account when the list holds other accounts' resources (an admin's view). Every related kind costs
 * one list call per page (`q=uuid?=a,b,c`), never one per row. A lookup the caller may not make
 * (a tenant reading hosts) leaves the uuid showing: display never fails a command.
 */
import type { KindContract } from './catalog.js';
import { kebab, refKind } from './flags.js';
import type { ApiClient } from './http.js';
import { hasName, itemsOf } from './resolve.js';

type Row = Record<string, unknown>;

/** the query language's limit on the values of one `?=` condition */
const MAX_VALUES = 500;

export interface RefColumn {
  /** the resource field holding the uuid, `hostUuid` */
  field: string;
  /** the display column holding the name, `host` */
  column: string;
  kind: KindContract;
}

/** `hostUuid` → the host kind, `lastHostUuid` too, when that kind has names to show. */
export function refColumn(field: string, kinds: KindContract[]): RefColumn | undefined {
  const m = /^(.+)Uuid$/.exec(field);
  if (!m?.[1]) return undefined;
  const kind = refKind(kebab(m[1]), kinds)?.kind;
  return kind && hasName(kind) ? { field, column: m[1], kind } : undefined;
}

/** A VM list reads as people think of VMs: where it runs, its addresses, what it was made from. */
const VM_COLUMNS = ['uuid', 'name', 'state', 'host', 'ips', 'image', 'instanceOffering', 'tags'];

/** The default table columns of a kind: the contract's, with references shown by name. */
export function defaultColumns(kind: KindContract, kinds: KindContract[]): string[] {
  if (kind.kind === 'vms') return VM_COLUMNS;
  return kind.columns.map((c) => refColumn(c, kinds)?.column ?? c);
}

function strings(values: unknown[]): string[] {
  return [...new Set(values.filter((v): v is string => typeof v === 'string' && v !== ''))];
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Every item of `kind` matching `field?=values`, in as few calls as the value limit allows. */
async function lookup(
  client: ApiClient,
  path: string,
  field: string,
  values: string[],
  fields: string[],
  sort?: string,
): Promise<Row[]> {
  const out: Row[] = [];
  for (const part of chunks(values, MAX_VALUES)) {
    try {
      const query: Array<[string, string]> = [
        ['q', `${field}?=${part.join(',')}`],
        ['fields', fields.join(',')],
        ['limit', '1000'],
      ];
      if (sort) query.push(['sort', sort]);
      out.push(...itemsOf((await client.get(path, query)).body));
    } catch {
      // not readable by this caller (or gone): the uuids stay on show
    }
  }
  return out;
}

/** uuid → name of the given resources of one kind. */
export async function namesOf(
  client: ApiClient,
  kind: KindContract,
  uuids: string[],
): Promise<Map<string, string>> {
  const found = await lookup(client, `/v1/${kind.kind}`, 'uuid', uuids, ['uuid', 'name']);
  return new Map(found.map((r) => [String(r.uuid), String(r.name)]));
}

/** Addresses of each VM's NICs, eth0 first. */
async function ipsOf(client: ApiClient, vmUuids: string[]): Promise<Map<string, string[]>> {
  const nics = await lookup(
    client,
    '/v1/vm-nics',
    'vmUuid',
    vmUuids,
    ['vmUuid', 'ip', 'deviceId'],
    'deviceId',
  );
  const out = new Map<string, string[]>();
  for (const nic of nics) {
    if (typeof nic.ip !== 'string') continue;
    const vm = String(nic.vmUuid);
    out.set(vm, [...(out.get(vm) ?? []), nic.ip]);
  }
  return out;
}

/** `key=value` (or `key`) of each resource's user tags. */
async function tagsOf(client: ApiClient, uuids: string[]): Promise<Map<string, string[]>> {
  const tags = await lookup(
    client,
    '/v1/tags',
    'resourceUuid',
    uuids,
    ['resourceUuid', 'key', 'value'],
    'key',
  );
  const out = new Map<string, string[]>();
  for (const t of tags) {
    const id = String(t.resourceUuid);
    const text =
      t.value === null || t.value === undefined || t.value === '' ? String(t.key) : `${t.key}=${t.value}`;
    out.set(id, [...(out.get(id) ?? []), text]);
  }
  return out;
}

export interface DisplayOptions {
  client: ApiClient;
  kinds: KindContract[];
  /** the caller's own account: an `account` column appears when a row belongs to another one */
  selfAccountUuid?: string | undefined;
}

/**
 * Display rows for `items` and the columns to show (`wanted`, or the defaults). Only what the
 * columns need is looked up.
 */
export async function displayRows(
  kind: KindContract,
  items: Row[],
  opts: DisplayOptions,
  wanted?: string[],
): Promise<{ rows: Row[]; columns: string[] }> {
  const columns = [...(wanted ?? defaultColumns(kind, opts.kinds))];
  const others = items.some(
    (r) =>
      typeof r.accountUuid === 'string' && r.accountUuid !== (opts.selfAccountUuid ?? items[0]?.accountUuid),
  );
  if (!wanted && others && !columns.includes('account'))
    columns.splice(Math.min(2, columns.length), 0, 'account');
  const rows = items.map((r) => ({ ...r }));
  const uuids = strings(items.map((r) => r.uuid));
  const jobs: Array<Promise<void>> = [];
  for (const column of columns) {
    if (column in (items[0] ?? {})) continue; // a field of the resource itself
    const ref = refColumn(`${column}Uuid`, opts.kinds);
    if (ref) {
      jobs.push(
        namesOf(opts.client, ref.kind, strings(items.map((r) => r[ref.field]))).then((names) => {
          for (const row of rows) {
            const id = row[ref.field];
            if (typeof id === 'string') row[column] = names.get(id) ?? id;
          }
        }),
      );
    } else if (column === 'ips' && kind.kind === 'vms') {
      jobs.push(
        ipsOf(opts.client, uuids).then((ips) => {
          for (const row of rows) row.ips = ips.get(String(row.uuid)) ?? [];
        }),
      );
    } else if (column === 'tags' && kind.taggable) {
      jobs.push(
        tagsOf(opts.client, uuids).then((tags) => {
          for (const row of rows) row.tags = tags.get(String(row.uuid)) ?? [];
        }),
      );
    }
  }
  await Promise.all(jobs);
  return { rows, columns };
}

/**
 * What `get` (and `--wait`) shows besides the resource's own fields: each reference as
 * `name (uuid)`, and a VM's addresses and tags.
 */
export async function displayOne(kind: KindContract, resource: Row, opts: DisplayOptions): Promise<Row> {
  const refs = Object.keys(resource)
    .map((f) => refColumn(f, opts.kinds))
    .filter((r): r is RefColumn => r !== undefined && typeof resource[r.field] === 'string');
  const wanted = refs.map((r) => r.column);
  if (kind.kind === 'vms') wanted.push('ips');
  if (kind.taggable) wanted.push('tags');
  const { rows } = await displayRows(kind, [resource], opts, wanted);
  const row = rows[0] ?? {};
  const out: Row = {};
  for (const ref of refs) {
    const name = row[ref.column];
    if (typeof name === 'string' && name !== resource[ref.field])
      out[ref.field] = `${name} (${resource[ref.field]})`;
  }
  if (kind.kind === 'vms') out.ips = row.ips;
  if (kind.taggable) out.tags = row.tags;
  return out;
}
