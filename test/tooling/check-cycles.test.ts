// The import-cycle check (scripts/check-cycles.mjs) that lint and `npm test` run: it must fail on a
// cycle, type-only imports included, and pass on a tree without one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const script = resolve('scripts/check-cycles.mjs');

function runOn(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-cycles-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a tree without cycles passes', () => {
  const r = runOn({
    'src/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
    'src/b.ts': 'export const b = 1;\n',
  });
  assert.equal(r.status, 0, r.stderr);
});

test('a cycle through a type-only, multi-line import fails and names its files', () => {
  const r = runOn({
    'src/x/a.ts': "import type {\n  B,\n} from '../y/b.js';\nexport type A = B;\n",
    'src/y/b.ts': "import { a } from '../x/a.js';\nexport type B = number;\nexport const c = a;\n",
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /src\/x\/a\.ts/);
  assert.match(r.stderr, /src\/y\/b\.ts/);
});
