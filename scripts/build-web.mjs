// Builds the web console (web/) with Vite into dist/web: hashed assets under dist/web/assets (served
// with a year-long cache) and index.html (served with no-cache). Runs after the transpile step: the
// console's catalog of kinds (the contract registry, the query language's fields, relations and
// visibility, the VM states) is read from dist/src and handed to the bundle as JSON, so the
// browser loads neither TypeBox nor server code, and the console always matches the API it ships with.
// Skipped when no input changed since the last build (a stamp of every input file's content),
// which keeps `npm test` and `npm start` fast after the first build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const OUT = resolve('dist/web');
const STAMP = join(OUT, '.inputs');

function walk(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

const { KINDS } = await import('../dist/src/contract/kinds.js');
const { JOB_STATES } = await import('../dist/src/contract/common.js');
const { VM_STATES } = await import('../dist/src/kernel/vm-states.js');
const { kindRegistry } = await import('../dist/src/resources/schemas.js');
const registry = kindRegistry();
const query = {};
for (const k of KINDS) {
  const s = registry.get(k.kind);
  if (!s) continue;
  query[k.kind] = {
    fields: s.fields,
    relations: s.relations ?? {},
    visibility: s.visibility,
    key: s.key ?? 'uuid',
    ...(s.defaultSort ? { defaultSort: s.defaultSort } : {}),
  };
}
// create bodies and their cross-field rules feed the create forms (validation as you type with
// the API's own schemas); update bodies are left out until the console edits resources
const kinds = KINDS.map(({ update, ...k }) => ({ ...k, creatable: !!k.create, updatable: !!update }));
const catalog = JSON.stringify({ kinds, query, vmStates: VM_STATES, jobStates: JOB_STATES });

const inputs = [...walk('web'), 'scripts/build-web.mjs', 'package-lock.json'].sort();
const hash = createHash('sha256').update(catalog);
for (const f of inputs) hash.update(f).update(readFileSync(f));
const stamp = hash.digest('hex');
const upToDate =
  existsSync(STAMP) && readFileSync(STAMP, 'utf8') === stamp && existsSync(join(OUT, 'index.html'));
if (!upToDate) await buildWeb();

async function buildWeb() {
  const { build } = await import('vite');
  const { default: react } = await import('@vitejs/plugin-react');
  const VIRTUAL = 'virtual:nimbus-catalog';
  await build({
    root: resolve('web'),
    configFile: false,
    logLevel: 'warn',
    base: '/',
    plugins: [
      react(),
      {
        name: 'nimbus-catalog',
        resolveId: (id) => (id === VIRTUAL ? `\0${VIRTUAL}` : undefined),
        // JSON.parse of a string literal is faster for the browser than the same object literal
        load: (id) =>
          id === `\0${VIRTUAL}` ? `export default JSON.parse(${JSON.stringify(catalog)});` : undefined,
      },
    ],
    build: {
      outDir: OUT,
      emptyOutDir: true,
      assetsDir: 'assets',
      sourcemap: false,
      reportCompressedSize: false,
      chunkSizeWarningLimit: 2048,
    },
  });
  writeFileSync(STAMP, stamp);
}
