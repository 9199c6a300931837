/** Words for numbers in reasons and explanations: byte counts in binary units, and plurals. */

const UNITS = [
  ['TiB', 1024 ** 4],
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

/** "64 GiB", "1.5 GiB", "512 MiB", "100 B": the largest unit ≤ the value, at most two decimals. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  const abs = Math.abs(bytes);
  for (const [unit, size] of UNITS) {
    if (abs >= size) return `${sign}${Number((abs / size).toFixed(2))} ${unit}`;
  }
  return `${sign}${abs} B`;
}

/** Both values formatted, falling back to exact bytes when rounding would make different values look equal. */
export function formatBytesPair(a: number, b: number): [string, string] {
  const fa = formatBytes(a);
  const fb = formatBytes(b);
  return fa === fb && a !== b ? [`${a} B`, `${b} B`] : [fa, fb];
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
