/**
 * The reading side of every kind's command: `list` (filters, paging, --all, --account, appliance
 * VMs hidden) and `get`, the output options they share with the writing side (-f, -o, -c), and
 * `showResource`, which is also how `--wait` shows what a job made: one fetch, one shape.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { noun, withArticle } from '../contract/wording.js';
import { KINDS, type KindContract } from './catalog.js';
import type { Ctx } from './context.js';
import { type DisplayOptions, displayOne, displayRows } from './display.js';
import { UsageError } from './errors.js';
import { parseInteger, type RefResolver } from './flags.js';
import type { Query } from './http.js';
import { FORMATS, type Format, parseFormat, renderPage, renderResource } from './output.js';
import { readProfile } from './profile.js';
import { hasName, itemsOf } from './resolve.js';

/** the server's largest page: --all pages through with it */
const MAX_PAGE = 1000;

export interface ListOptions {
  q?: string[];
  sort?: string;
  limit?: number;
  offset?: number;
  count?: boolean;
  fields?: string;
}

export function listQuery(o: ListOptions): Query {
  const query: Query = (o.q ?? []).map((c): [string, string] => ['q', c]);
  if (o.sort) query.push(['sort', o.sort]);
  if (o.limit !== undefined) query.push(['limit', String(o.limit)]);
  if (o.offset !== undefined) query.push(['offset', String(o.offset)]);
  if (o.count) query.push(['count', 'true']);
  if (o.fields) query.push(['fields', o.fields]);
  return query;
}

function nonNegative(raw: string): number {
  const n = parseInteger(raw);
  if (n < 0) throw new InvalidArgumentError('must be 0 or more.');
  return n;
}

export function positive(raw: string): number {
  const n = parseInteger(raw);
  if (n < 1) throw new InvalidArgumentError('must be 1 or more.');
  return n;
}

const repeatable = (c: string, prev: string[] | undefined) => [...(prev ?? []), c];

/** `-f table|value|csv|json|yaml` (openstack's spelling), `-o` the same, `-c` picks columns. */
export function addOutputOptions(cmd: Command): Command {
  // `-f` as in the openstack CLI; the long name is --output, because `--format` is a body field
  // of some kinds (image create --format qcow2)
  return cmd
    .addOption(new Option('-f, --output <format>', 'output format').choices([...FORMATS]))
    .addOption(new Option('-o <format>', 'same as -f').choices([...FORMATS]))
    .addOption(
      new Option('-c, --column <field>', 'show only this column or field (repeatable, in order)').argParser(
        repeatable,
      ),
    );
}

export const waitOptions = (cmd: Command) =>
  cmd
    .addOption(
      new Option('--wait', 'wait for the job to finish, showing its progress; fail if the job fails'),
    )
    .addOption(
      new Option(
        '--timeout <seconds>',
        'with --wait: give up waiting after this long (exit 1; the job goes on)',
      ).argParser(positive),
    );

export const idArg = (kind: KindContract) => (hasName(kind) ? '<uuid-or-name>' : '<uuid>');
export const itemPath = (kind: KindContract, id: string) => `/v1/${kind.kind}/${encodeURIComponent(id)}`;

const LIST_HELP = `
Conditions (--q, repeatable, all must hold):
  field=value  field!=value  field>=n  field<n  field~=pattern% (like)  field!~=pattern%
  field?=a,b (one of)  field!?=a,b  field=null  field!=null
  nested fields follow relations: cluster.zone.name=z1; tags: tag=env=prod, tag=env
Sort: --sort -name,createdAt (a leading - sorts descending)
Output: -f table|value|csv|json|yaml (or -o), -c name -c state (columns, in order); tables show
related resources by name and sizes in KiB…TiB, JSON and YAML what the server sent (bytes, uuids).`;

export function opts(cmd: Command): Record<string, unknown> {
  return cmd.opts();
}

export function formatOf(cmd: Command): Format {
  const o = opts(cmd);
  if (o.o !== undefined && o.output !== undefined && o.o !== o.output)
    throw new UsageError('give either -f or -o, not both');
  return parseFormat(String(o.output ?? o.o ?? 'table'));
}

/** The columns asked for with -c (repeatable) or --fields a,b. */
export function columnsOf(cmd: Command): string[] | undefined {
  const o = opts(cmd);
  const cols = [
    ...((o.column as string[] | undefined) ?? []),
    ...(typeof o.fields === 'string' ? o.fields.split(',').map((f) => f.trim()) : []),
  ].filter((c) => c !== '');
  return cols.length > 0 ? cols : undefined;
}

export function displayOptions(ctx: Ctx): DisplayOptions {
  let self: string | undefined;
  try {
    self = ctx.env.NIMBUS_TOKEN ? undefined : readProfile(ctx.env)?.accountUuid;
  } catch {
    self = undefined;
  }
  return { client: ctx.client(), kinds: KINDS, selfAccountUuid: self };
}

/** Sizes in a quota row depend on what it limits: `vm.memory` is bytes, `vm.num` is not. */
function rowBytes(kind: KindContract): ((row: Record<string, unknown>) => Set<string>) | undefined {
  if (kind.kind !== 'quotas') return undefined;
  const props = (kind.update as { properties?: Record<string, { 'x-unit'?: string }> }).properties ?? {};
  const sized = new Set(Object.keys(props).filter((k) => props[k]?.['x-unit'] === 'bytes'));
  return (row) => (sized.has(String(row.name)) ? new Set(['limit', 'used']) : new Set());
}

/** Appliance VMs (virtual routers) are the platform's, not the tenant's work: hidden unless asked for. */
async function applianceFilter(ctx: Ctx): Promise<Query> {
  try {
    const res = await ctx.client().get('/v1/virtual-routers', [
      ['fields', 'vmUuid'],
      ['limit', String(MAX_PAGE)],
    ]);
    const uuids = itemsOf(res.body)
      .map((r) => r.vmUuid)
      .filter((u): u is string => typeof u === 'string');
    const out: Query = [];
    for (let i = 0; i < uuids.length; i += 500)
      out.push(['q', `uuid!?=${uuids.slice(i, i + 500).join(',')}`]);
    return out;
  } catch {
    return [];
  }
}

export function addList(parent: Command, kind: KindContract, ctx: Ctx, resolve: RefResolver): void {
  const owned = (kind.resource as { properties?: Record<string, unknown> }).properties?.accountUuid;
  const cmd = parent
    .command('list')
    .description(`list ${noun(kind.kind)}, a page at a time (--all: every page)`)
    .addOption(
      new Option('-q, --q <condition>', "filter, e.g. 'state=Enabled' (repeatable)").argParser(repeatable),
    )
    .option('--sort <fields>', 'sort by these fields, e.g. -createdAt,name')
    .addOption(new Option('--limit <n>', 'page size').argParser(nonNegative))
    .addOption(new Option('--offset <n>', 'skip this many items').argParser(nonNegative))
    .option('--all', 'every match, paging through them all')
    .option('--count', 'also report the total number of matches')
    .option('--fields <a,b>', 'only these fields (and table columns)');
  if (owned) cmd.option('--account <name-or-uuid>', 'admin: only the resources of this account');
  if (kind.kind === 'vms') cmd.option('--appliances', 'also list appliance VMs (virtual routers)');
  addOutputOptions(cmd)
    .addHelpText(
      'after',
      `${LIST_HELP}\nExample:\n  nimbus ${kind.singular} list --q 'name~=web%' --sort -createdAt -f json`,
    )
    .action(async (_o: unknown, c: Command) => {
      const o = opts(c) as ListOptions & { all?: boolean; account?: string; appliances?: boolean };
      if (o.all && (o.limit !== undefined || o.offset !== undefined))
        throw new UsageError('--all pages through everything: give it without --limit and --offset');
      const query = listQuery(o);
      if (o.account) {
        const account = KINDS.find((k) => k.kind === 'accounts');
        if (account) query.push(['q', `accountUuid=${await resolve(account, o.account)}`]);
      }
      if (kind.kind === 'vms' && !o.appliances) query.push(...(await applianceFilter(ctx)));
      const page = o.all
        ? await allPages(ctx, kind, query)
        : (await ctx.client().get(`/v1/${kind.kind}`, query)).body;
      const format = formatOf(c);
      const columns = columnsOf(c);
      const items = itemsOf(page);
      const shown =
        format === 'json' || format === 'yaml'
          ? { rows: items, columns: columns ?? [] }
          : await displayRows(kind, items, displayOptions(ctx), columns);
      const bytes = rowBytes(kind);
      ctx.out(
        await renderPage(kind, page, format, {
          color: ctx.colorOut,
          rows: shown.rows,
          columns: shown.columns,
          ...(columns ? { fields: columns } : {}),
          ...(bytes ? { bytes } : {}),
        }),
      );
    });
}

/** Every page of a list, fetched one after another, as one page object. */
async function allPages(ctx: Ctx, kind: KindContract, query: Query): Promise<unknown> {
  const items: Array<Record<string, unknown>> = [];
  for (let offset = 0; ; offset += MAX_PAGE) {
    const res = await ctx
      .client()
      .get(`/v1/${kind.kind}`, [...query, ['limit', String(MAX_PAGE)], ['offset', String(offset)]]);
    const page = itemsOf(res.body);
    items.push(...page);
    if (page.length < MAX_PAGE) break;
  }
  return { items, offset: 0, total: items.length };
}

/** `get`, and what `--wait` shows at the end: the same fetch, the same shape, the same order. */
export async function showResource(
  ctx: Ctx,
  kind: KindContract,
  uuid: string,
  format: Format,
  fields?: string[],
): Promise<void> {
  const res = await ctx.client().get(itemPath(kind, uuid));
  const body = res.body as Record<string, unknown>;
  const display =
    format === 'json' || format === 'yaml' || typeof body !== 'object' || body === null
      ? {}
      : await displayOne(kind, body, displayOptions(ctx));
  ctx.out(
    await renderResource(kind, body, format, { color: ctx.colorOut, display, ...(fields ? { fields } : {}) }),
  );
}

export function addGet(parent: Command, kind: KindContract, ctx: Ctx, resolve: RefResolver): void {
  const cmd = parent
    .command('get')
    .description(`show ${withArticle(kind.singular)}`)
    .argument(idArg(kind), `the ${noun(kind.singular)}`)
    .option('--fields <a,b>', 'only these fields, in this order');
  addOutputOptions(cmd).action(async (id: string, _o: unknown, c: Command) => {
    await showResource(ctx, kind, await resolve(kind, id), formatOf(c), columnsOf(c));
  });
}
