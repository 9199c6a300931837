// Bundles the nimbus CLI into dist/cli/ (bin/nimbus.js runs dist/cli/nimbus.mjs): one ESM entry
// plus chunks loaded only when needed (YAML, tables, the spinner), with src/cli/catalog.ts
// replaced by the contract serialized as JSON. Start-up then parses a fraction of the code and
// evaluates no TypeBox: `nimbus --version` went from ~1.3 s to ~0.1 s (bench/cli.ts measures it).
// Runs after the transpile step (it reads the contract from dist/src/contract).
// Outputs are .mjs so build.mjs's clean-up of stale .js files leaves them alone.
import { readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const OUT = 'dist/cli';
const { KINDS } = await import('../dist/src/contract/kinds.js');
const { JOB_STATES } = await import('../dist/src/contract/common.js');
// JSON.parse of a string literal is faster for V8 than the same object as a JS literal.
const catalog = [
  `export const KINDS = JSON.parse(${JSON.stringify(JSON.stringify(KINDS))});`,
  `export const JOB_STATES = ${JSON.stringify(JOB_STATES)};`,
].join('\n');

const result = await build({
  entryPoints: { nimbus: 'src/cli/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: OUT,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  minify: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (cli-table3) call require() for node built-ins.
  banner: {
    js: "import{createRequire as __nimbusRequire}from'node:module';const require=__nimbusRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'cli-catalog',
      setup(b) {
        b.onResolve({ filter: /\/catalog\.js$/ }, (args) =>
          args.importer.includes(join('src', 'cli'))
            ? { path: 'catalog', namespace: 'cli-catalog' }
            : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'cli-catalog' }, () => ({ contents: catalog, loader: 'js' }));
      },
    },
    {
      // commander requires child_process at load time for executable subcommands, which the CLI
      // never uses; loading it costs every command. Loaded on first use instead.
      name: 'lazy-child-process',
      setup(b) {
        b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
          args.importer.includes('commander')
            ? { path: 'child_process', namespace: 'lazy-builtin' }
            : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, () => ({
          contents: "module.exports = new Proxy({}, { get: (_t, k) => require('node:child_process')[k] });",
          loader: 'js',
        }));
      },
    },
  ],
});
const wanted = new Set(Object.keys(result.metafile.outputs).map((p) => basename(p)));
for (const name of readdirSync(OUT)) if (!wanted.has(name)) rmSync(join(OUT, name));
