/**
 * Rendering of pages, resources and jobs as table, value, csv, JSON or YAML (`-f`, the openstack
 * CLI's habit; `-o` is the same option). JSON and YAML show what the server sent (sizes in bytes,
 * references as uuids: scripts depend on it), narrowed to the `-c` columns when some are given.
 * Tables, csv and value are for people and spreadsheets: they show display rows (display.ts:
 * related resources by name, a VM's addresses and tags), sizes in binary units in tables, and
 * states coloured when a terminal is watching. The YAML and table libraries load only when used.
 */
import pc from 'picocolors';
import { noun } from '../contract/wording.js';
import type { KindContract } from './catalog.js';
import { UsageError } from './errors.js';
import { asJsonSchema } from './flags.js';
import { itemsOf } from './resolve.js';

export const FORMATS = ['table', 'value', 'csv', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(raw: string): Format {
  const f = FORMATS.find((x) => x === raw);
  if (!f) throw new UsageError(`unknown output format '${raw}' (use one of: ${FORMATS.join(', ')})`);
  return f;
}

export interface RenderOptions {
  color?: boolean;
  /** columns to show instead of the default ones (from -c or --fields) */
  fields?: string[];
  /** fields that are sizes in bytes beyond the kind's own (a quota row's limit, say) */
  bytes?: (row: Record<string, unknown>) => Set<string>;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${UNITS[unit]}`;
}

/** Fields the contract marks as sizes, in the resource or in the bodies that set them. */
export function bytesFields(kind: KindContract | undefined): Set<string> {
  const out = new Set<string>();
  if (!kind) return out;
  for (const schema of [kind.resource, kind.create, kind.update]) {
    for (const [name, prop] of Object.entries(asJsonSchema(schema).properties ?? {})) {
      if (prop['x-unit'] === 'bytes') out.add(name);
    }
  }
  return out;
}

/** Reads `a.b.c` so `--fields cluster.zone.name` columns show the nested value. */
export function valueAt(obj: unknown, path: string): unknown {
  if (typeof obj === 'object' && obj !== null && path in obj) return (obj as Record<string, unknown>)[path];
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function cellText(value: unknown, isBytes: boolean): string {
  if (value === undefined || value === null) return '';
  if (isBytes && typeof value === 'number') return formatBytes(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null))
    return value.map(String).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const GOOD = /^(Running|Enabled|Connected|Ready|Succeeded|Available|Attached|ok)$/;
const BAD = /^(Error|Failed|Disconnected|Unknown|Cancelled|Destroyed|Deleted|Expunged)$/;
const MOVING = /ing$/;

/** States read at a glance: green is fine, red needs a look, cyan is on its way. */
export function colorState(text: string): string {
  if (GOOD.test(text)) return pc.green(text);
  if (BAD.test(text)) return pc.red(text);
  if (MOVING.test(text)) return pc.cyan(text);
  return pc.yellow(text);
}

const STATE_COLUMNS = new Set(['state', 'status', 'powerState']);

async function serialize(value: unknown, format: 'json' | 'yaml'): Promise<string> {
  if (format === 'json') return JSON.stringify(value, null, 2);
  const { default: YAML } = await import('yaml');
  return YAML.stringify(value).trimEnd();
}

async function newTable(head: string[], color: boolean) {
  const { default: Table } = await import('cli-table3');
  return new Table({
    head: head.map((h) => (color ? pc.bold(h) : h)),
    style: { head: [], border: [] },
    // No rule between rows: a list of a hundred hosts should take a hundred lines, not two hundred.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

function csvCell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Only the named columns of each item, for JSON/YAML with -c (values as the server sent them). */
function pick(row: Record<string, unknown>, columns: string[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c) => [c, valueAt(row, c) ?? null]));
}

/**
 * A list. `page` is the server's page (JSON/YAML print it whole unless -c narrows the items);
 * `rows` are its display rows (display.ts), in the same order, for the other formats.
 */
export async function renderPage(
  kind: KindContract,
  page: unknown,
  format: Format,
  opts: RenderOptions & { rows?: Array<Record<string, unknown>>; columns?: string[] } = {},
): Promise<string> {
  const items = opts.rows ?? itemsOf(page);
  const chosen = opts.fields && opts.fields.length > 0 ? opts.fields : undefined;
  if (format === 'json' || format === 'yaml') {
    if (!chosen) return serialize(page, format);
    return serialize({ ...(page as object), items: items.map((r) => pick(r, chosen)) }, format);
  }
  const columns = chosen ?? opts.columns ?? kind.columns;
  const sizes = bytesFields(kind);
  const isBytes = (row: Record<string, unknown>, c: string) =>
    format === 'table' && (sizes.has(c) || (opts.bytes?.(row).has(c) ?? false));
  const cell = (row: Record<string, unknown>, c: string) => {
    const text = cellText(valueAt(row, c), isBytes(row, c));
    return opts.color && STATE_COLUMNS.has(c) && text !== '' ? colorState(text) : text;
  };
  if (format === 'value') return items.map((row) => columns.map((c) => cell(row, c)).join(' ')).join('\n');
  if (format === 'csv') {
    return [columns, ...items.map((row) => columns.map((c) => cell(row, c)))]
      .map((r) => r.map(csvCell).join(','))
      .join('\n');
  }
  if (items.length === 0) return `no ${noun(kind.kind)} found`;
  const table = await newTable(columns, opts.color ?? false);
  for (const row of items) table.push(columns.map((c) => cell(row, c)));
  return [table.toString(), pageFooter(page, items.length)].filter((l) => l !== '').join('\n');
}

function pageFooter(page: unknown, count: number): string {
  const p = page as { limit?: unknown; offset?: unknown; total?: unknown };
  const offset = typeof p.offset === 'number' ? p.offset : 0;
  if (typeof p.total === 'number') return `${offset + 1}-${offset + count} of ${p.total}`;
  if (typeof p.limit === 'number' && count >= p.limit)
    return `more may follow: --offset ${offset + count}, or --all`;
  return '';
}

/**
 * One resource (`get`, and the result of `--wait`): field/value rows in the server's order.
 * `display` adds or replaces values for people (a reference's name beside its uuid, addresses).
 */
export async function renderResource(
  kind: KindContract | undefined,
  resource: unknown,
  format: Format,
  opts: RenderOptions & { display?: Record<string, unknown> } = {},
): Promise<string> {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    return format === 'json' || format === 'yaml' ? serialize(resource, format) : cellText(resource, false);
  }
  const raw = resource as Record<string, unknown>;
  const chosen = opts.fields && opts.fields.length > 0 ? opts.fields : undefined;
  if (format === 'json' || format === 'yaml') return serialize(chosen ? pick(raw, chosen) : raw, format);
  const shown: Record<string, unknown> = { ...raw, ...(opts.display ?? {}) };
  const fields = chosen ?? Object.keys(shown);
  const sizes = bytesFields(kind);
  const text = (f: string) => {
    const t = cellText(valueAt(shown, f), format === 'table' && sizes.has(f));
    return opts.color && STATE_COLUMNS.has(f) && t !== '' ? colorState(t) : t;
  };
  if (format === 'value') return fields.map(text).join('\n');
  if (format === 'csv') return [fields, fields.map(text)].map((r) => r.map(csvCell).join(',')).join('\n');
  const table = await newTable(['field', 'value'], opts.color ?? false);
  for (const f of fields) table.push([f, text(f)]);
  return table.toString();
}

export interface JobView {
  uuid: string;
  state: string;
  kind?: string;
  progress?: number;
  resourceUuid?: string | null;
}

/** What an async command prints when it does not wait: enough to follow the job. */
export async function renderJobAccepted(job: JobView, body: unknown, format: Format): Promise<string> {
  if (format === 'json' || format === 'yaml') return serialize(body, format);
  if (format === 'value' || format === 'csv') return job.uuid;
  const what = job.kind ? ` (${job.kind}${job.resourceUuid ? ` ${job.resourceUuid}` : ''})` : '';
  return `job ${job.uuid} ${job.state}${what}\nfollow it with: nimbus job wait ${job.uuid}`;
}
