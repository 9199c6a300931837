/**
 * JSON Schema (the contract's TypeBox bodies) → command-line options, and option values → request
 * body. This is what makes a field added to the contract appear in `nimbus <kind> create --help`
 * with no CLI change: every property becomes a `--kebab-case` flag typed by its schema.
 * Values are parsed here (integers, sizes, choices); the server stays the judge of everything else
 * (patterns, lengths, formats), so the two never disagree about what is valid.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { noun, withArticle } from '../contract/wording.js';
import type { KindContract } from './catalog.js';
import { UsageError } from './errors.js';

/** The subset of JSON Schema the contract uses. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
  items?: JsonSchema;
  'x-unit'?: string;
  /** a shorter name for the `--<kind> <name-or-uuid>` flag of a reference (`--offering`) */
  'x-cli-ref-alias'?: string;
  /** a string the CLI also reads from a file: `--ssh-key @~/.ssh/id_ed25519.pub` */
  'x-cli-file'?: boolean;
}

export function asJsonSchema(schema: unknown): JsonSchema {
  return (typeof schema === 'object' && schema !== null ? schema : {}) as JsonSchema;
}

export type ValueKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'bytes'
  | 'seconds'
  | 'enum'
  | 'list'
  | 'json';

export interface FieldSpec {
  /** body property, camelCase */
  field: string;
  /** option name without the dashes, kebab-case */
  flag: string;
  kind: ValueKind;
  description: string;
  required: boolean;
  nullable: boolean;
  choices?: unknown[];
  minimum?: number;
  maximum?: number;
  format?: string;
  /** for lists: how each item is parsed */
  item?: FieldSpec;
  /** a string given as `@path` is the file's content (trailing newline dropped) */
  file?: boolean;
  /**
   * `clusterUuid` names the cluster kind: `--cluster <name-or-uuid>` is accepted too; a list
   * `l3NetworkUuids` takes `--l3-network <name-or-uuid>` repeated (`list`), each resolved
   */
  ref?: { kind: KindContract; flag: string; alias?: string; list?: boolean };
}

export function kebab(camel: string): string {
  return camel
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

/** The property name commander stores an option under (its own camel-casing of the flag). */
export function attributeOf(flag: string): string {
  return flag.split('-').reduce((acc, word) => acc + word.charAt(0).toUpperCase() + word.slice(1));
}

interface Shape {
  kind: ValueKind;
  nullable: boolean;
  choices?: unknown[];
  item?: Shape;
}

function shapeOf(s: JsonSchema): Shape {
  if (s.anyOf) {
    const nonNull = s.anyOf.filter((m) => m.type !== 'null');
    const nullable = nonNull.length < s.anyOf.length;
    if (nonNull.length > 0 && nonNull.every((m) => m.const !== undefined)) {
      return { kind: 'enum', nullable, choices: nonNull.map((m) => m.const) };
    }
    if (nonNull.length === 1 && nonNull[0]) return { ...shapeOf(nonNull[0]), nullable: nullable };
    return { kind: 'json', nullable };
  }
  if (Array.isArray(s.enum))
    return { kind: 'enum', nullable: s.enum.includes(null), choices: s.enum.filter((e) => e !== null) };
  if (s.const !== undefined) return { kind: 'enum', nullable: false, choices: [s.const] };
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  const nullable = types.includes('null');
  const type = types.find((t) => t !== 'null');
  switch (type) {
    case 'integer':
      return {
        kind: s['x-unit'] === 'bytes' ? 'bytes' : s['x-unit'] === 'seconds' ? 'seconds' : 'integer',
        nullable,
      };
    case 'number':
      return { kind: 'number', nullable };
    case 'boolean':
      return { kind: 'boolean', nullable };
    case 'string':
      return { kind: 'string', nullable };
    case 'array':
      return { kind: 'list', nullable, item: shapeOf(s.items ?? {}) };
    default:
      return { kind: 'json', nullable };
  }
}

function humanize(field: string): string {
  return kebab(field).replace(/-/g, ' ');
}

function specOf(field: string, s: JsonSchema, required: boolean): FieldSpec {
  const shape = shapeOf(s);
  const spec: FieldSpec = {
    field,
    // a duration reads best without its unit: `--lease 7d` for leaseSeconds
    flag: shape.kind === 'seconds' ? kebab(field.replace(/Seconds$/, '')) : kebab(field),
    kind: shape.kind,
    description: s.description ?? humanize(field),
    required,
    nullable: shape.nullable,
  };
  if (shape.choices) spec.choices = shape.choices;
  if (s.minimum !== undefined) spec.minimum = s.minimum;
  if (s.maximum !== undefined) spec.maximum = s.maximum;
  if (s.format !== undefined) spec.format = s.format;
  if (s['x-cli-file'] === true) spec.file = true;
  if (shape.item) spec.item = specOf(field, s.items ?? {}, false);
  return spec;
}

/**
 * One spec per property of an object schema. `reserved` are flags the command already owns
 * (--wait, --output): a field with such a name gets a `field-` prefix rather than a clash.
 */
export function fieldSpecs(schema: unknown, kinds: KindContract[], reserved: string[] = []): FieldSpec[] {
  const s = asJsonSchema(schema);
  const required = new Set(s.required ?? []);
  const taken = new Set(reserved);
  const specs = Object.entries(s.properties ?? {}).map(([field, prop]) => {
    const spec = specOf(field, prop, required.has(field));
    if (taken.has(spec.flag)) spec.flag = `field-${spec.flag}`;
    return spec;
  });
  for (const spec of specs) taken.add(spec.flag);
  for (const spec of specs) {
    // a uuid (`clusterUuid`), or a list of uuids whose items are strings (`l3NetworkUuids`)
    const list = spec.kind === 'list' && spec.item?.kind === 'string';
    const m = (list ? /^(.+)Uuids$/ : /^(.+)Uuid$/).exec(spec.field);
    const ref = m?.[1] ? refKind(kebab(m[1]), kinds) : undefined;
    if (ref && (spec.kind === 'string' || list) && !taken.has(ref.flag)) {
      spec.ref = { kind: ref.kind, flag: ref.flag, ...(list ? { list: true } : {}) };
      taken.add(ref.flag);
      const alias = asJsonSchema(s.properties?.[spec.field])['x-cli-ref-alias'];
      if (alias && !taken.has(alias)) {
        spec.ref.alias = alias;
        taken.add(alias);
      }
    }
  }
  return specs;
}

/**
 * The kind a reference prefix names, and its flag: `cluster` → the cluster kind, `--cluster`;
 * a qualified prefix names the kind of its last words and keeps its own flag:
 * `data-disk-offering` → disk offerings, `--data-disk-offering`; `default-l3-network` → L3s.
 */
export function refKind(
  prefix: string,
  kinds: KindContract[],
): { kind: KindContract; flag: string } | undefined {
  const words = prefix.split('-');
  for (let i = 0; i < words.length; i++) {
    const kind = kinds.find((k) => k.singular === words.slice(i).join('-'));
    if (kind) return { kind, flag: prefix };
  }
  return undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 0, K: 1, M: 2, G: 3, T: 4, P: 5 };

/** `512M`, `64G`, `1.5G`, `1T` (powers of 1024; `MiB`/`MB` spellings too) or plain bytes. */
export function parseBytes(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(?:i?b)?|b)?\s*$/i.exec(raw);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toUpperCase()];
  if (!m || unit === undefined) {
    throw new InvalidArgumentError('expected a size such as 512M, 64G, 1.5T or a number of bytes.');
  }
  const bytes = Number(m[1]) * 1024 ** unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(`${raw} is not a whole number of bytes.`);
  }
  return bytes;
}

const SECONDS_PER: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `90s`, `30m`, `12h`, `7d`, `2w` or plain seconds. */
export function parseSeconds(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/i.exec(raw);
  if (!m)
    throw new InvalidArgumentError('expected a duration such as 90s, 30m, 12h, 7d or a number of seconds.');
  const seconds = Number(m[1]) * (SECONDS_PER[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(seconds))
    throw new InvalidArgumentError(`${raw} is not a whole number of seconds.`);
  return seconds;
}

export function parseInteger(raw: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw new InvalidArgumentError('expected an integer.');
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('integer out of range.');
  return n;
}

function checkRange(spec: FieldSpec, n: number): number {
  if (spec.minimum !== undefined && n < spec.minimum)
    throw new InvalidArgumentError(`must be at least ${spec.minimum}.`);
  if (spec.maximum !== undefined && n > spec.maximum)
    throw new InvalidArgumentError(`must be at most ${spec.maximum}.`);
  return n;
}

function readArgFile(path: string): string {
  const resolved = path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
  try {
    return readFileSync(resolved, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`,
    );
  }
}

/** Turns one command-line string into the body value its schema wants. */
export function parseFieldValue(spec: FieldSpec, raw: string): unknown {
  if (spec.nullable && raw === 'null') return null;
  switch (spec.kind) {
    case 'string':
      return spec.file && raw.startsWith('@') ? readArgFile(raw.slice(1)) : raw;
    case 'integer':
      return checkRange(spec, parseInteger(raw));
    case 'bytes':
      return checkRange(spec, parseBytes(raw));
    case 'seconds':
      return checkRange(spec, parseSeconds(raw));
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
      return checkRange(spec, n);
    }
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw new InvalidArgumentError('expected true or false.');
    case 'enum': {
      const choice = (spec.choices ?? []).find((c) => String(c) === raw);
      if (choice === undefined) {
        throw new InvalidArgumentError(`expected one of: ${(spec.choices ?? []).map(String).join(', ')}.`);
      }
      return choice;
    }
    case 'list': {
      const item = spec.item ?? { ...spec, kind: 'string' };
      return raw === '' ? [] : raw.split(',').map((part) => parseFieldValue(item, part.trim()));
    }
    case 'json':
      try {
        return JSON.parse(raw);
      } catch {
        throw new InvalidArgumentError('expected JSON.');
      }
  }
}

function placeholder(spec: FieldSpec): string {
  if (spec.kind === 'enum') {
    const joined = (spec.choices ?? []).map(String).join('|');
    return joined.length <= 40 ? joined : 'choice';
  }
  if (spec.kind === 'bytes') return 'size';
  if (spec.kind === 'seconds') return 'duration';
  if (spec.kind === 'integer' || spec.kind === 'number') return 'n';
  if (spec.kind === 'list') return 'a,b';
  if (spec.kind === 'json') return 'json';
  if (spec.format === 'uuid') return 'uuid';
  return spec.field === 'name' ? 'name' : 'value';
}

function helpOf(spec: FieldSpec, requiredMarks: boolean): string {
  const parts = [spec.description];
  if (spec.kind === 'enum') parts.push(`(one of: ${(spec.choices ?? []).map(String).join(', ')})`);
  if (spec.kind === 'bytes') parts.push('(bytes, or with a K/M/G/T suffix: 512M, 64G, 1.5T)');
  if (spec.kind === 'seconds') parts.push('(seconds, or 90s, 30m, 12h, 7d)');
  if (
    (spec.kind === 'integer' || spec.kind === 'bytes') &&
    spec.minimum !== undefined &&
    spec.maximum !== undefined
  ) {
    parts.push(`(${spec.minimum}-${spec.maximum})`);
  }
  if (spec.kind === 'list') parts.push('(comma-separated; may be repeated)');
  if (spec.nullable) parts.push("('null' clears it)");
  if (spec.file) parts.push('(or @file to read it from a file)');
  if (spec.ref) parts.push(`(or --${spec.ref.flag} <name-or-uuid>)`);
  if (requiredMarks && spec.required) parts.push('[required]');
  return parts.join(' ');
}

/** Adds the options of `specs` to `cmd`; `requiredMarks` is false for update (all optional). */
export function addFieldOptions(cmd: Command, specs: FieldSpec[], requiredMarks: boolean): void {
  for (const spec of specs) {
    if (spec.kind === 'boolean') {
      cmd.addOption(new Option(`--${spec.flag}`, helpOf(spec, requiredMarks)));
      cmd.addOption(new Option(`--no-${spec.flag}`, `set ${spec.field} to false`));
      continue;
    }
    const opt = new Option(`--${spec.flag} <${placeholder(spec)}>`, helpOf(spec, requiredMarks));
    opt.argParser((raw: string, previous: unknown) => {
      const value = parseFieldValue(spec, raw);
      // Lists may be given as `--x a,b` or `--x a --x b`; both add up.
      return spec.kind === 'list' && Array.isArray(previous) && Array.isArray(value)
        ? [...previous, ...value]
        : value;
    });
    cmd.addOption(opt);
    if (spec.ref) {
      const how =
        spec.ref.kind.kind === 'vm-nics' ? 'by address, VM name (vm or vm:l3) or uuid' : 'by name or uuid';
      const refHelp = spec.ref.list
        ? `${withArticle(spec.ref.kind.singular)} ${how} (repeatable, in order), instead of --${spec.flag}`
        : `${noun(spec.ref.kind.singular)} ${how}, instead of --${spec.flag}`;
      // a list's reference flag adds up: `--l3 a --l3 b` (names may hold no comma to split on)
      const refOption = (flag: string, help: string) => {
        const o = new Option(`--${flag} <name-or-uuid>`, help);
        if (spec.ref?.list)
          o.argParser((raw: string, previous: unknown) => [
            ...(Array.isArray(previous) ? previous : []),
            raw,
          ]);
        return o;
      };
      cmd.addOption(refOption(spec.ref.flag, refHelp));
      if (spec.ref.alias) cmd.addOption(refOption(spec.ref.alias, `same as --${spec.ref.flag}`));
    }
  }
}

/** The `--<kind>` reference flag's value, or its alias's. */
function refValue(spec: FieldSpec, opts: Record<string, unknown>): unknown {
  if (!spec.ref) return undefined;
  const named = opts[attributeOf(spec.ref.flag)];
  const aliased = spec.ref.alias ? opts[attributeOf(spec.ref.alias)] : undefined;
  if (named !== undefined && aliased !== undefined) {
    throw new UsageError(`give either --${spec.ref.flag} or --${spec.ref.alias}, not both`);
  }
  return named ?? aliased;
}

export type RefResolver = (kind: KindContract, nameOrUuid: string) => Promise<string>;

/**
 * Builds the request body from parsed options. Every missing required field is reported at once
 * before anything is resolved or sent.
 */
export async function collectBody(
  specs: FieldSpec[],
  opts: Record<string, unknown>,
  resolve: RefResolver,
  enforceRequired: boolean,
): Promise<Record<string, unknown>> {
  const missing: string[] = [];
  for (const spec of specs) {
    const direct = opts[attributeOf(spec.flag)];
    const viaRef = refValue(spec, opts);
    if (direct !== undefined && viaRef !== undefined) {
      throw new UsageError(`give either --${spec.flag} or --${spec.ref?.flag}, not both`);
    }
    if (enforceRequired && spec.required && direct === undefined && viaRef === undefined) {
      missing.push(spec.ref ? `--${spec.flag} (or --${spec.ref.flag})` : `--${spec.flag}`);
    }
  }
  if (missing.length > 0) {
    throw new UsageError(`missing required option${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  }
  const body: Record<string, unknown> = {};
  for (const spec of specs) {
    const direct = opts[attributeOf(spec.flag)];
    const viaRef = refValue(spec, opts);
    const kind = spec.ref?.kind;
    if (kind && typeof viaRef === 'string') body[spec.field] = await resolve(kind, viaRef);
    else if (kind && Array.isArray(viaRef))
      body[spec.field] = await Promise.all(viaRef.map((v) => resolve(kind, String(v))));
    else if (direct !== undefined) body[spec.field] = direct;
  }
  return body;
}
