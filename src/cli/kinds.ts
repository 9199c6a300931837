/**
 * One command per kind of the contract (`nimbus host …`), with list/get always (reads.ts) and
 * create/update/delete/actions/tag/untag where the contract allows them. Nothing here names a
 * kind or a field (`job wait` aside): the contract's KINDS table decides what exists.
 */
import { type Command, Option } from 'commander';
import { noun, withArticle } from '../contract/wording.js';
import { KINDS, type KindContract } from './catalog.js';
import type { Ctx } from './context.js';
import { UsageError } from './errors.js';
import { addFieldOptions, collectBody, type FieldSpec, fieldSpecs, type RefResolver } from './flags.js';
import { jobOf, reportFinished, runJobCommand, waitForJob } from './jobs.js';
import {
  addGet,
  addList,
  addOutputOptions,
  columnsOf,
  formatOf,
  idArg,
  itemPath,
  opts,
  positive,
  showResource,
  waitOptions,
} from './reads.js';
import { resolveId } from './resolve.js';

const BUILTIN = ['list', 'get', 'create', 'update', 'delete', 'tag', 'untag', 'wait', 'help'];
/** flags the generated commands own; a body field with one of these names is renamed field-<name> */
const RESERVED_FLAGS = [
  'wait',
  'timeout',
  'output',
  'column',
  'help',
  'q',
  'sort',
  'limit',
  'offset',
  'count',
  'fields',
];
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
 * Body flags come first in its help, --wait and the output options after them.
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
  if (onResource) cmd.argument(idArg(kind), `the ${noun(kind.singular)}`);
  for (const [arg, help] of spec.args ?? []) cmd.argument(arg, help);
  const specs = spec.specs ?? [];
  addFieldOptions(cmd, specs, spec.requiredMarks ?? true);
  addOutputOptions(waitOptions(cmd));
  cmd.action(async (...params: unknown[]) => {
    const c = params.at(-1) as Command;
    const positionals = c.args;
    const o = opts(c);
    if (o.timeout !== undefined && o.wait !== true) throw new UsageError('--timeout goes with --wait');
    const format = formatOf(c);
    const body = await collectBody(specs, o, resolve, spec.requiredMarks ?? true);
    spec.check?.(body);
    const uuid = onResource ? await resolve(kind, positionals[0] ?? '') : undefined;
    const req = spec.request(uuid, positionals.slice(onResource ? 1 : 0), body);
    const fields = columnsOf(c);
    await runJobCommand(ctx, {
      ...req,
      wait: o.wait === true,
      format,
      kind,
      ...(typeof o.timeout === 'number' ? { timeoutMs: o.timeout * 1000 } : {}),
      // the finished resource is shown exactly as `get` shows it (a delete has none to show)
      ...(spec.name === 'delete'
        ? {}
        : { show: (k: KindContract, id: string) => showResource(ctx, k, id, format, fields) }),
    });
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
  const a = withArticle(kind.singular);
  if (kind.create) {
    add({
      name: 'create',
      description: `create ${a} (${kind.summary})`,
      specs: fieldSpecs(kind.create, KINDS, RESERVED_FLAGS),
      request: (_u, _a, body) => ({ method: 'POST', path: `/v1/${kind.kind}`, body }),
    });
  }
  if (kind.update) {
    const specs = fieldSpecs(kind.update, KINDS, RESERVED_FLAGS);
    add({
      name: 'update',
      description: `change ${a}`,
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
      description: `delete ${a}`,
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
      description: `set a user tag on ${a} (e.g. nimbus ${kind.singular} tag <id> env=prod)`,
      args: [['<key[=value]>', 'tag key, optionally with a value']],
      request: (uuid, [tag]) => ({ method: 'POST', path: `${at(uuid)}/tags`, body: parseTag(tag ?? '') }),
    });
    add({
      name: 'untag',
      description: `remove a user tag from ${a}`,
      args: [['<key>', 'tag key']],
      request: (uuid, [key]) => ({
        method: 'DELETE',
        path: `${at(uuid)}/tags/${encodeURIComponent(key ?? '')}`,
      }),
    });
  }
}

function addJobWait(parent: Command, kind: KindContract, ctx: Ctx): void {
  const cmd = parent
    .command('wait')
    .description('follow a job until it ends; print its result, fail if it failed')
    .argument('<uuid>', 'the job')
    .addOption(
      new Option(
        '--timeout <seconds>',
        'give up waiting after this long (exit 1; the job goes on)',
      ).argParser(positive),
    );
  addOutputOptions(cmd).action(async (uuid: string, _o: unknown, c: Command) => {
    const o = opts(c);
    const res = await ctx.client().get(itemPath(kind, uuid));
    const job = jobOf(res.body);
    if (!job) throw new UsageError(`${uuid} is not a job`);
    const timeoutMs = typeof o.timeout === 'number' ? o.timeout * 1000 : undefined;
    await reportFinished(ctx, await waitForJob(ctx, job, timeoutMs), formatOf(c));
  });
}

/**
 * `nimbus <kind> …`. With `full` false only the noun and its summary are made: enough for
 * `nimbus --help`, and the cheap path for every command that names another kind (start-up time).
 */
export function addKindCommand(program: Command, kind: KindContract, ctx: Ctx, full = true): Command {
  const resolve: RefResolver = (k, id) => resolveId(ctx.client(), k, id);
  const cmd = program.command(kind.singular).description(kind.summary);
  if (!full) return cmd;
  addList(cmd, kind, ctx, resolve);
  addGet(cmd, kind, ctx, resolve);
  addWrites(cmd, kind, ctx, resolve);
  if (kind.kind === 'jobs') addJobWait(cmd, kind, ctx);
  return cmd;
}
