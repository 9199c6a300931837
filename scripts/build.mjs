// Transpiles src/ and test/ to dist/ file by file (no bundling), so node runs plain JS:
// faster test start-up than a TS loader, and the same code paths as production.
// dist/ is updated in place (several builds and test runs may overlap); outputs whose
// source is gone are removed afterwards so a deleted test never runs.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

function walk(dir, ext) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path, ext));
    else if (name.endsWith(ext) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const sources = [...walk('src', '.ts'), ...walk('test', '.ts'), ...walk('bench', '.ts')];
await build({
  entryPoints: sources,
  outdir: 'dist',
  outbase: '.',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});
// nimbus-agent ships to hypervisor hosts as one file that needs only node: bundle it (pino is CJS,
// so the ESM bundle gets a `require`).
await build({
  entryPoints: ['src/agent/main.ts'],
  outfile: 'dist/nimbus-agent.mjs',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  banner: {
    js: "import { createRequire as __nimbusCreateRequire } from 'node:module'; const require = __nimbusCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
const wanted = new Set(sources.map((s) => join('dist', s.replace(/\.ts$/, '.js'))));
// dist/web holds the console's bundle (build-web.mjs), not transpiled sources
for (const out of walk('dist', '.js'))
  if (!wanted.has(out) && !out.startsWith(join('dist', 'web'))) rmSync(out);
// The CLI runs as a bundle (start-up time): see build-cli.mjs.
await import('./build-cli.mjs');
// The web console (web/ → dist/web, served at / by the management node): see build-web.mjs.
await import('./build-web.mjs');
