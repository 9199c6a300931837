/**
 * Prometheus's metric-name rules, checked on exposition text (what `promtool check metrics`
 * enforces, for machines without promtool): every family has HELP and TYPE; names match
 * `[a-zA-Z_:][a-zA-Z0-9_:]*` and are snake_case; counters end in `_total` and nothing else does;
 * units are base units named as the suffix (`_seconds`, `_bytes`), never ms, kilobytes, minutes;
 * a histogram has `_bucket` (with `le`), `_sum` and `_count`; every sample belongs to a family.
 * Also parses samples, so tests can read values.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const NON_BASE_UNITS = [
  'milliseconds',
  'microseconds',
  'nanoseconds',
  'ms',
  'us',
  'minutes',
  'hours',
  'days',
  'kilobytes',
  'megabytes',
  'gigabytes',
  'kb',
  'mb',
  'gb',
  'kib',
  'mib',
  'gib',
  'bits',
  'percent',
  'celsius',
];

export function parseExposition(text: string): Exposition {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2] as string, meta[3] ?? '');
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`unparseable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(LABEL)) labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[4]) });
  }
  return { help, type, samples };
}

/** The family a sample belongs to (a histogram's `_bucket`/`_sum`/`_count` belong to it). */
function familyOf(e: Exposition, name: string): string | undefined {
  if (e.type.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = e.type.get(base);
    if (t === 'histogram' || t === 'summary') return base;
  }
  return undefined;
}

/** Every violation of the rules above, one line each (empty: the text passes). */
export function lintExposition(text: string): string[] {
  const problems: string[] = [];
  let e: Exposition;
  try {
    e = parseExposition(text);
  } catch (err) {
    return [(err as Error).message];
  }
  for (const [name, t] of e.type) {
    if (!NAME.test(name)) problems.push(`${name}: not a valid metric name`);
    if (/[A-Z]/.test(name)) problems.push(`${name}: not snake_case`);
    if (!e.help.get(name)) problems.push(`${name}: no HELP text`);
    if (t === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter must end in _total`);
    if (t !== 'counter' && name.endsWith('_total')) problems.push(`${name}: a ${t} must not end in _total`);
    const words = name.split('_');
    for (const unit of NON_BASE_UNITS)
      if (words.includes(unit)) problems.push(`${name}: '${unit}' is not a base unit (use seconds or bytes)`);
    if (t === 'histogram') {
      const buckets = e.samples.filter((s) => s.name === `${name}_bucket`);
      if (buckets.some((s) => s.labels.le === undefined)) problems.push(`${name}: a bucket without le`);
      const hasSamples = e.samples.some((s) => s.name.startsWith(name));
      if (hasSamples && !e.samples.some((s) => s.name === `${name}_count`))
        problems.push(`${name}: no _count`);
      if (hasSamples && !e.samples.some((s) => s.name === `${name}_sum`)) problems.push(`${name}: no _sum`);
    }
  }
  for (const name of e.help.keys()) if (!e.type.has(name)) problems.push(`${name}: HELP without TYPE`);
  const orphans = new Set(e.samples.map((s) => s.name).filter((n) => !familyOf(e, n)));
  for (const name of orphans) problems.push(`${name}: sample without TYPE`);
  return problems;
}

/** The value of one sample, by name and (a subset of) labels; undefined when absent. */
export function sampleValue(
  e: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}
