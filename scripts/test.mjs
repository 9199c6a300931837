// Runs every *.test.js under dist/ with node's test runner. Without DATABASE_URL it starts an
// embedded PostgreSQL under .nimbus-test/ for the run and stops it afterwards.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

// Real-host tests (*.real.test.js: QEMU guests, root) run only with --real (npm run test:real).
const real = process.argv.includes('--real');
const filter = process.argv.slice(2).filter((a) => a !== '--real');
let files = walk('dist')
  .filter((f) => f.endsWith('.real.test.js') === real)
  .sort();
if (filter.length > 0) files = files.filter((f) => filter.some((p) => f.includes(p)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

let embedded;
const env = { ...process.env };
if (!env.DATABASE_URL) {
  const { startEmbeddedDatabase } = await import('../dist/src/db/embedded.js');
  embedded = await startEmbeddedDatabase('.nimbus-test');
  env.DATABASE_URL = embedded.url;
  console.log('tests use an embedded PostgreSQL under .nimbus-test/');
}

const child = spawn(
  process.execPath,
  ['--test', '--test-reporter=spec', `--test-concurrency=${env.TEST_CONCURRENCY ?? 2}`, ...files],
  { stdio: 'inherit', env },
);
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
if (embedded) await embedded.stop();
process.exit(code);
