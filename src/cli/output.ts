/**
 * Rendering of pages, resources and jobs as table, JSON or YAML. JSON and YAML show exactly what
 * the server sent (scripts depend on it); only tables are made friendlier (sizes in GiB, nested
 * values inline), and only tables depend on the contract's `columns`.
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import YAML from 'yaml';
import type { KindContract } from '../contract/kinds.js';
import { UsageError } from './errors.js';
import { asJsonSchema } from './flags.js';
import { itemsOf } from './resolve.js';

export const FORMATS = ['table', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(raw: string): Format {
  const f = FORMATS.find((x) => x === raw);
  if (!f) throw new UsageError(`unknown output format '${raw}' (use one of: ${FORMATS.join(', ')})`);
  return f;
}

export interface RenderOptions {
  color?: boolean;
  /** columns to show instead of the contract's (from --fields) */
  fields?: string[];
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
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function serialize(value: unknown, format: Exclude<Format, 'table'>): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : YAML.stringify(value).trimEnd();
}

function newTable(head: string[], color: boolean): Table.Table {
  return new Table({
    head: head.map((h) => (color ? pc.bold(h) : h)),
    style: { head: [], border: [] },
    // No rule between rows: a list of a hundred hosts should take a hundred lines, not two hundred.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

export function renderPage(
  kind: KindContract,
  page: unknown,
  format: Format,
  opts: RenderOptions = {},
): string {
  if (format !== 'table') return serialize(page, format);
  const items = itemsOf(page);
  if (items.length === 0) return `no ${kind.kind} found`;
  const columns = opts.fields && opts.fields.length > 0 ? opts.fields : kind.columns;
  const sizes = bytesFields(kind);
  const table = newTable(columns, opts.color ?? false);
  for (const item of items) table.push(columns.map((c) => cellText(valueAt(item, c), sizes.has(c))));
  return [table.toString(), pageFooter(page, items.length)].filter((l) => l !== '').join('\n');
}

function pageFooter(page: unknown, count: number): string {
  const p = page as { limit?: unknown; offset?: unknown; total?: unknown };
  const offset = typeof p.offset === 'number' ? p.offset : 0;
  if (typeof p.total === 'number') return `${offset + 1}-${offset + count} of ${p.total}`;
  if (typeof p.limit === 'number' && count >= p.limit) return `more may follow: --offset ${offset + count}`;
  return '';
}

export function renderResource(
  kind: KindContract | undefined,
  resource: unknown,
  format: Format,
  opts: RenderOptions = {},
): string {
  if (format !== 'table') return serialize(resource, format);
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    return cellText(resource, false);
  }
  const sizes = bytesFields(kind);
  const table = newTable(['field', 'value'], opts.color ?? false);
  for (const [field, value] of Object.entries(resource))
    table.push([field, cellText(value, sizes.has(field))]);
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
export function renderJobAccepted(job: JobView, body: unknown, format: Format): string {
  if (format !== 'table') return serialize(body, format);
  const what = job.kind ? ` (${job.kind}${job.resourceUuid ? ` ${job.resourceUuid}` : ''})` : '';
  return `job ${job.uuid} ${job.state}${what}\nfollow it with: nimbus job wait ${job.uuid}`;
}
