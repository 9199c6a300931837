/**
 * The README's walk-through as data: every fenced `sh` block that follows a `<!-- walkthrough -->`
 * line, split into commands (a trailing `\` continues a line; `#` comment lines are prose). A
 * command followed by a comment line `# → error CODE…` is expected to fail with that code.
 */
export interface WalkthroughCommand {
  /** the command as written, continuation lines joined */
  text: string;
  /** README line number where it starts (1-based), for failure messages */
  line: number;
  /** the error code the README says it fails with, if it is meant to fail */
  expectError?: string;
}

export const MARKER = '<!-- walkthrough -->';

export function walkthroughCommands(readme: string): WalkthroughCommand[] {
  const lines = readme.split('\n');
  const out: WalkthroughCommand[] = [];
  let armed = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === MARKER) {
      armed = true;
      continue;
    }
    if (!line.startsWith('```')) continue;
    const fenced = line.trim() === '```sh';
    // find the block's end whether or not it is part of the walk-through
    let end = i + 1;
    while (end < lines.length && !(lines[end] ?? '').startsWith('```')) end++;
    if (fenced && armed) out.push(...blockCommands(lines.slice(i + 1, end), i + 2));
    armed = false;
    i = end;
  }
  return out;
}

function blockCommands(block: string[], firstLine: number): WalkthroughCommand[] {
  const out: WalkthroughCommand[] = [];
  let current: WalkthroughCommand | undefined;
  let continuing = false;
  block.forEach((raw, idx) => {
    const line = raw.trimEnd();
    if (continuing && current) {
      current.text += `\n${line}`;
      continuing = line.endsWith('\\');
      return;
    }
    const trimmed = line.trim();
    if (trimmed === '') return;
    if (trimmed.startsWith('#')) {
      const m = /^#\s*→\s*error\s+([A-Z][A-Z0-9_]*)/.exec(trimmed);
      if (m?.[1] && current) current.expectError = m[1];
      return;
    }
    current = { text: line, line: firstLine + idx };
    out.push(current);
    continuing = line.endsWith('\\');
  });
  return out;
}
