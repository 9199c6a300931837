/**
 * One command per kind of the contract (`nimbus host …`), with list/get always and
 * create/update/delete/actions/tag/untag where the contract allows them. Nothing here names a
 * kind or a field (`job wait` aside): the contract's KINDS table decides what exists.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { KINDS, type KindContract } from '../contract/kinds.js';
import type { Ctx } from './context.js';
import { UsageError } from './errors.js';
import {
  addFieldOptions,
  collectBody,
  type FieldSpec,
  fieldSpecs,
  parseInteger,
  type RefResolver,
} from './flags.js';
import type { Query } from './http.js';
import { jobOf, reportFinished, runJobCommand, waitForJob } from './jobs.js';
import { FORMATS, type Format, parseFormat, renderPage, renderResource } from './output.js';
import { hasName, resolveId } from './resolve.js';

const BUILTIN = ['list', 'get', 'create', 'update', 'delete', 'tag', 'untag', 'wait', 'help'];
/** flags the generated commands own; a body field with one of these names is renamed field-<name> */
const RESERVED_FLAGS = ['wait', 'output', 'help', 'q', 'sort', 'limit', 'offset', 'count', 'fields'];

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

const outputOption = () =>
  new Option('-o, --output <format>', 'output format').choices([...FORMATS]).default('table');
const waitOption = () =>
  new Option('--wait', 'wait for the job to finish, showing its progress; fail if the job fails');

const idArg = (kind: KindContract) => (hasName(kind) ? '<uuid-or-name>' : '<uuid>');
const itemPath = (kind: KindContract, id: string) => `/v1/${kind.kind}/${encodeURIComponent(id)}`;

const LIST_HELP = `
Conditions (--q, repeatable, all must hold):
  field=value  field!=value  field>=n  field<n  field~=pattern% (like)  field!~=pattern%
  field?=a,b (one of)  field!?=a,b  field=null  field!=null
  nested fields follow relations: cluster.zone.name=z1; tags: tag=env=prod, tag=env
Sort: --sort -name,createdAt (a leading - sorts descending)`;

function opts(cmd: Command): Record<string, unknown> {
  return cmd.opts();
}

function formatOf(cmd: Command): Format {
  return parseFormat(String(opts(cmd).output ?? 'table'));
}

function addList(parent: Command, kind: KindContract, ctx: Ctx): void {
  parent
    .command('list')
    .description(`list ${kind.kind}, a page at a time`)
    .addOption(
      new Option('-q, --q <condition>', "filter, e.g. 'state=Enabled' (repeatable)").argParser(
        (c: string, prev: string[] | undefined) => [...(prev ?? []), c],
      ),
    )
    .option('--sort <fields>', 'sort by these fields, e.g. -createdAt,name')
    .addOption(new Option('--limit <n>', 'page size').argParser(nonNegative))
    .addOption(new Option('--offset <n>', 'skip this many items').argParser(nonNegative))
    .option('--count', 'also report the total number of matches')
    .option('--fields <a,b>', 'only these fields (and table columns)')
    .addOption(outputOption())
    .addHelpText(
      'after',
      `${LIST_HELP}\nExample:\n  nimbus ${kind.singular} list --q 'name~=web%' --sort -createdAt -o json`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      const o = opts(cmd) as ListOptions;
      const res = await ctx.client().get(`/v1/${kind.kind}`, listQuery(o));
      const fields = o.fields ? o.fields.split(',').map((f) => f.trim()) : undefined;
      ctx.out(renderPage(kind, res.body, formatOf(cmd), { color: ctx.color, ...(fields ? { fields } : {}) }));
    });
}

function addGet(parent: Command, kind: KindContract, ctx: Ctx, resolve: RefResolver): void {
  parent
    .command('get')
    .description(`show one ${kind.singular}`)
    .argument(idArg(kind), `the ${kind.singular}`)
    .addOption(outputOption())
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await ctx.client().get(itemPath(kind, await resolve(kind, id)));
      ctx.out(renderResource(kind, res.body, formatOf(cmd), { color: ctx.color }));
    });
}

interface JobSpec {
  name: string;
  description: string;
  /** positional arguments after the resource itself, as [syntax, help] */
  args?: Array<[string, string]>;
  specs?: FieldSpec[];
  /** update marks nothing required: every field is optional */
  requiredMarks?: boolean;
  /** refuses a body before anything is sent */
  check?(body: Record<string, unknown>): void;
  /** the request, from the resolved uuid, the extra positionals and the body built from flags */
  request(
    uuid: string | undefined,
    args: string[],
    body: Record<string, unknown>,
  ): {
    method: string;
    path: string;
    body?: unknown;
  };
}

/**
 * A command that answers with a job: the shared shape of create/update/delete/actions/tags.
 * Body flags come first in its help, --wait and --output after them.
 */
function addJobCommand(
  parent: Command,
  kind: KindContract,
  ctx: Ctx,
  resolve: RefResolver,
  spec: JobSpec,
): void {
  const onResource = spec.name !== 'create';
  const cmd = parent.command(spec.name).description(spec.description);
  if (onResource) cmd.argument(idArg(kind), `the ${kind.singular}`);
  for (const [arg, help] of spec.args ?? []) cmd.argument(arg, help);
  const specs = spec.specs ?? [];
  addFieldOptions(cmd, specs, spec.requiredMarks ?? true);
  cmd.addOption(waitOption()).addOption(outputOption());
  cmd.action(async (...params: unknown[]) => {
    const c = params.at(-1) as Command;
    const positionals = c.args;
    const body = await collectBody(specs, opts(c), resolve, spec.requiredMarks ?? true);
    spec.check?.(body);
    const uuid = onResource ? await resolve(kind, positionals[0] ?? '') : undefined;
    const req = spec.request(uuid, positionals.slice(onResource ? 1 : 0), body);
    await runJobCommand(ctx, { ...req, wait: opts(c).wait === true, format: formatOf(c), kind });
  });
}

export function parseTag(raw: string): { key: string; value?: string } {
  const eq = raw.indexOf('=');
  const key = eq < 0 ? raw : raw.slice(0, eq);
  if (key === '') throw new UsageError(`'${raw}' is not key or key=value`);
  return eq < 0 ? { key } : { key, value: raw.slice(eq + 1) };
}

function addWrites(parent: Command, kind: KindContract, ctx: Ctx, resolve: RefResolver): void {
  const add = (spec: JobSpec) => addJobCommand(parent, kind, ctx, resolve, spec);
  const at = (uuid: string | undefined) => itemPath(kind, uuid ?? '');
  if (kind.create) {
    add({
      name: 'create',
      description: `create a ${kind.singular}: ${kind.summary}`,
      specs: fieldSpecs(kind.create, KINDS, RESERVED_FLAGS),
      request: (_u, _a, body) => ({ method: 'POST', path: `/v1/${kind.kind}`, body }),
    });
  }
  if (kind.update) {
    const specs = fieldSpecs(kind.update, KINDS, RESERVED_FLAGS);
    add({
      name: 'update',
      description: `change a ${kind.singular}`,
      specs,
      requiredMarks: false,
      check: (body) => {
        if (Object.keys(body).length === 0) {
          throw new UsageError(
            `nothing to change: give at least one of ${specs.map((s) => `--${s.flag}`).join(', ')}`,
          );
        }
      },
      request: (uuid, _a, body) => ({ method: 'PATCH', path: at(uuid), body }),
    });
  }
  if (kind.deletable) {
    add({
      name: 'delete',
      description: `delete a ${kind.singular}`,
      request: (u) => ({ method: 'DELETE', path: at(u) }),
    });
  }
  for (const [action, { summary, body }] of Object.entries(kind.actions ?? {})) {
    add({
      name: BUILTIN.includes(action) ? `${action}-action` : action,
      description: summary,
      specs: fieldSpecs(body, KINDS, RESERVED_FLAGS),
      request: (uuid, _a, payload) => ({
        method: 'POST',
        path: `${at(uuid)}/actions/${encodeURIComponent(action)}`,
        body: payload,
      }),
    });
  }
  if (kind.taggable) {
    add({
      name: 'tag',
      description: `set a user tag on a ${kind.singular} (e.g. nimbus ${kind.singular} tag <id> env=prod)`,
      args: [['<key[=value]>', 'tag key, optionally with a value']],
      request: (uuid, [tag]) => ({ method: 'POST', path: `${at(uuid)}/tags`, body: parseTag(tag ?? '') }),
    });
    add({
      name: 'untag',
      description: `remove a user tag from a ${kind.singular}`,
      args: [['<key>', 'tag key']],
      request: (uuid, [key]) => ({
        method: 'DELETE',
        path: `${at(uuid)}/tags/${encodeURIComponent(key ?? '')}`,
      }),
    });
  }
}

function addJobWait(parent: Command, kind: KindContract, ctx: Ctx): void {
  parent
    .command('wait')
    .description('follow a job until it ends; print its result, fail if it failed')
    .argument('<uuid>', 'the job')
    .addOption(outputOption())
    .action(async (uuid: string, _o: unknown, c: Command) => {
      const res = await ctx.client().get(itemPath(kind, uuid));
      const job = jobOf(res.body);
      if (!job) throw new UsageError(`${uuid} is not a job`);
      reportFinished(ctx, await waitForJob(ctx, job), formatOf(c));
    });
}

export function addKindCommand(program: Command, kind: KindContract, ctx: Ctx): Command {
  const resolve: RefResolver = (k, id) => resolveId(ctx.client(), k, id);
  const cmd = program.command(kind.singular).description(kind.summary);
  addList(cmd, kind, ctx);
  addGet(cmd, kind, ctx, resolve);
  addWrites(cmd, kind, ctx, resolve);
  if (kind.kind === 'jobs') addJobWait(cmd, kind, ctx);
  return cmd;
}
