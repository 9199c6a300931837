/**
 * Commands that are not one request on one kind: `nimbus quota set <account> name=value…`
 * (PATCH /v1/quotas/{accountUuid}, values typed by the contract's quota schema, sizes as 64G) and
 * `nimbus event tail` (follows GET /v1/events/stream, Server-Sent Events, until Ctrl-C).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { KINDS, type KindContract } from './catalog.js';
import type { Ctx } from './context.js';
import { namesOf } from './display.js';
import { LocalError, UsageError } from './errors.js';
import { fieldSpecs, parseFieldValue } from './flags.js';
import { runJobCommand } from './jobs.js';
import { renderPage } from './output.js';
import { addOutputOptions, displayOptions, formatOf } from './reads.js';
import { resolveId } from './resolve.js';

const kindNamed = (kind: string): KindContract => {
  const k = KINDS.find((x) => x.kind === kind);
  if (!k) throw new LocalError('NO_KIND', `this CLI knows no ${kind}`);
  return k;
};

/** `vm.num=50 vm.memory=64G` → the PATCH body, every bad pair reported at once. */
export function quotaBody(kind: KindContract, pairs: string[]): Record<string, unknown> {
  const specs = fieldSpecs(kind.update, []);
  const body: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    const spec = specs.find((s) => s.field === name);
    if (!spec || eq < 0) {
      problems.push(
        spec
          ? `'${pair}' needs a value: ${name}=<limit>`
          : `'${name}' is not a quota (${specs.map((s) => s.field).join(', ')})`,
      );
      continue;
    }
    try {
      body[name] = parseFieldValue(spec, pair.slice(eq + 1));
    } catch (err) {
      problems.push(`${name}: ${err instanceof InvalidArgumentError ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  if (Object.keys(body).length === 0) throw new UsageError('give at least one limit, e.g. vm.num=50');
  return body;
}

export function addQuotaSet(parent: Command, kind: KindContract, ctx: Ctx): void {
  const cmd = parent
    .command('set')
    .description("admin: change an account's limits (sizes take 512M, 64G, 1T)")
    .argument('<account>', 'the account, by name or uuid')
    .argument('<name=limit...>', 'e.g. vm.num=50 vm.cpu=100 vm.memory=256G')
    .addOption(new Option('--wait', 'wait until the new limits apply, then show them'));
  addOutputOptions(cmd).action(async (account: string, pairs: string[], _o: unknown, c: Command) => {
    const body = quotaBody(kind, pairs);
    const accountUuid = await resolveId(ctx.client(), kindNamed('accounts'), account);
    const format = formatOf(c);
    await runJobCommand(ctx, {
      method: 'PATCH',
      path: `/v1/quotas/${encodeURIComponent(accountUuid)}`,
      body,
      wait: c.opts().wait === true,
      format,
      kind,
      show: async () => {
        const res = await ctx.client().get('/v1/quotas', [['q', `accountUuid=${accountUuid}`]]);
        const bytes = new Set(
          fieldSpecs(kind.update, [])
            .filter((s) => s.kind === 'bytes')
            .map((s) => s.field),
        );
        const items = (res.body as { items?: Array<Record<string, unknown>> }).items ?? [];
        ctx.out(
          await renderPage(kind, res.body, format, {
            color: ctx.colorOut,
            rows: items,
            columns: ['name', 'used', 'limit'],
            bytes: (row) => (bytes.has(String(row.name)) ? new Set(['used', 'limit']) : new Set()),
          }),
        );
      },
    });
  });
}

interface StreamEvent {
  id?: string;
  at?: string;
  type?: string;
  resourceKind?: string;
  resourceUuid?: string;
  data?: Record<string, unknown>;
}

/** Splits a Server-Sent Events byte stream into the `data:` payloads of its events. */
export async function* sseData(stream: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data !== '') yield data;
    }
  }
}

export function addEventTail(parent: Command, ctx: Ctx): void {
  parent
    .command('tail')
    .description('follow events as they happen, until Ctrl-C')
    .option('--type <type>', 'only events of this type or its family (vm, vm.state.changed)')
    .option('--resource <uuid>', 'only events of this resource')
    .option('--after <id>', 'first replay the stored events after this id')
    .addOption(
      new Option('--max-events <n>', 'stop after this many events').argParser((raw: string) => {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be 1 or more.');
        return n;
      }),
    )
    .addOption(
      new Option('-f, --output <format>', 'a line per event, or one JSON object per line')
        .choices(['table', 'json'])
        .default('table'),
    )
    .addHelpText('after', '\nExample:\n  nimbus event tail --type vm')
    .action(
      async (o: { type?: string; resource?: string; after?: string; maxEvents?: number; output: string }) => {
        const query: Array<[string, string]> = [];
        if (o.type) query.push(['type', o.type]);
        if (o.resource) query.push(['resourceUuid', o.resource]);
        if (o.after) query.push(['after', o.after]);
        const stop = new AbortController();
        const stream = await ctx.client().stream('/v1/events/stream', query, stop.signal);
        const names = new Map<string, string>();
        let seen = 0;
        try {
          for await (const data of sseData(stream)) {
            if (o.output === 'json') ctx.out(data);
            else {
              let e: StreamEvent;
              try {
                e = JSON.parse(data) as StreamEvent;
              } catch {
                continue;
              }
              ctx.out(await eventLine(ctx, e, names));
            }
            if (o.maxEvents !== undefined && ++seen >= o.maxEvents) break;
          }
        } finally {
          stop.abort();
        }
      },
    );
}

/** `12:01:02 vm.state.changed vm web1 Running` — the resource by name where it has one. */
async function eventLine(ctx: Ctx, e: StreamEvent, names: Map<string, string>): Promise<string> {
  const kind = KINDS.find((k) => k.kind === e.resourceKind || k.singular === e.resourceKind);
  const id = e.resourceUuid ?? '';
  if (kind && id && !names.has(id)) {
    const found = await namesOf(displayOptions(ctx).client, kind, [id]);
    names.set(id, found.get(id) ?? id);
  }
  const summary = Object.entries(e.data ?? {})
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  const time = e.at ? new Date(e.at).toISOString().slice(11, 19) : '';
  return [time, e.type ?? '', e.resourceKind ?? '', names.get(id) ?? id, summary]
    .filter((p) => p !== '')
    .join(' ');
}
