/**
 * Backup and restore of the embedded database (issue 10 item 6, docs/cluster.md "Backup and
 * restore"): a node runs on its embedded PostgreSQL; zones are created; `--backup` is taken while
 * the node runs; more zones are created; `--restore` into that running node's data directory is
 * refused; the backup is restored into a fresh data directory, a node started on it shows exactly
 * the zones of the backup, and the admin logs in with the same password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { freePort } from '../../src/db/embedded.js';
import { createTestDatabase } from '../support/database.js';
import { Api } from '../support/node.js';
import { CRASH_PASSWORD, MAIN, ServerProcess } from './crash-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-backup-'));
chmodSync(dir, 0o755); // as root, the embedded PostgreSQL runs as `postgres` and must traverse it
const started: ServerProcess[] = [];
const file = join(dir, 'nimbus.backup');
let backedUp: string[] = [];
after(async () => {
  for (const p of started) await p.killHard().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(dataDir: string): Promise<{ p: ServerProcess; api: Api }> {
  const port = await freePort();
  const args = [
    '--data-dir',
    dataDir,
    '--port',
    String(port),
    '--no-demo',
    '--log-file',
    join(dataDir, 'log'),
  ];
  const p = new ServerProcess(args, `http://127.0.0.1:${port}`);
  started.push(p);
  await p.ready(120_000);
  return { p, api: await new Api(p.url).login('admin', CRASH_PASSWORD) };
}

/** `node dist/src/main.js <args>` to its end: exit code and output */
function oneShot(args: string[]): { code: number | null; out: string } {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const r = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

async function zoneNames(api: Api): Promise<string[]> {
  const res = await api.get('/v1/zones?limit=1000');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.items as Array<{ name: string }>).map((z) => z.name).sort();
}

async function createZone(api: Api, name: string): Promise<void> {
  const res = await api.post('/v1/zones?wait=true', { name });
  assert.ok(res.status === 200 || res.status === 201 || res.status === 202, JSON.stringify(res.body));
  for (let i = 0; i < 100 && !(await zoneNames(api)).includes(name); i++)
    await new Promise((r) => setTimeout(r, 100));
}

test('a backup taken while the node runs restores into a fresh database with exactly its resources', async () => {
  const original = join(dir, 'original');
  const a = await startNode(original);
  await createZone(a.api, 'bk-before-1');
  await createZone(a.api, 'bk-before-2');
  backedUp = await zoneNames(a.api);
  assert.deepEqual(backedUp, ['bk-before-1', 'bk-before-2']);

  const backup = oneShot(['--data-dir', original, '--backup', file]);
  assert.equal(backup.code, 0, backup.out);
  assert.match(backup.out, /backed up to .*: \d+ rows in \d+ tables/);
  assert.ok(existsSync(file));

  await createZone(a.api, 'bk-after');
  assert.deepEqual(await zoneNames(a.api), ['bk-after', 'bk-before-1', 'bk-before-2']);

  // a restore over a running node's database is refused, and changes nothing
  const refused = oneShot(['--data-dir', original, '--restore', file]);
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /a node is running on .*stop it first/);
  assert.deepEqual(await zoneNames(a.api), ['bk-after', 'bk-before-1', 'bk-before-2']);
  await a.p.interrupt();

  const fresh = join(dir, 'fresh');
  const restore = oneShot(['--data-dir', fresh, '--restore', file]);
  assert.equal(restore.code, 0, restore.out);
  assert.match(restore.out, /restored from .*: \d+ rows in \d+ tables/);

  const b = await startNode(fresh);
  assert.deepEqual(await zoneNames(b.api), backedUp, 'exactly the backed-up zones');
  // the restored database takes new work: its sequences and rows are whole
  await createZone(b.api, 'bk-new');
  assert.deepEqual(await zoneNames(b.api), ['bk-before-1', 'bk-before-2', 'bk-new']);
  await b.p.interrupt();
});

test('the backup restores into an external database (--database-url); one of another schema version is refused', async () => {
  assert.ok(existsSync(file), 'the first test made the backup');
  const target = await createTestDatabase({ max: 1 });
  try {
    const restore = oneShot(['--database-url', target.url, '--restore', file]);
    assert.equal(restore.code, 0, restore.out);
    const zones = await target.db.selectFrom('zones').select('name').orderBy('name').execute();
    assert.deepEqual(
      zones.map((z) => z.name),
      backedUp,
    );
    // the node that ran when the backup was taken is not running here: marked stopped
    const live = await target.db
      .selectFrom('managementNodes')
      .select('name')
      .where('stoppedAt', 'is', null)
      .execute();
    assert.deepEqual(live, []);
    assert.ok((await target.db.selectFrom('managementNodes').select('uuid').execute()).length > 0);
    // the same backup, as if taken at a schema with one more migration
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    const header = JSON.parse(lines[0]!) as { migrations: string[] };
    header.migrations.push('9999-from-the-future');
    lines[0] = JSON.stringify(header);
    const future = join(dir, 'future.backup');
    writeFileSync(future, gzipSync(lines.join('\n')));
    const refused = oneShot(['--database-url', target.url, '--restore', future]);
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /another schema version/);
    // a backup missing a row (cut short, edited) is refused too
    const cut = join(dir, 'cut.backup');
    writeFileSync(
      cut,
      gzipSync(gunzipSync(readFileSync(file)).toString('utf8').trimEnd().split('\n').slice(0, -1).join('\n')),
    );
    const incomplete = oneShot(['--database-url', target.url, '--restore', cut]);
    assert.equal(incomplete.code, 1, incomplete.out);
    assert.match(incomplete.out, /is incomplete: \w+ has \d+ of its \d+ rows/);
    const still = await target.db.selectFrom('zones').select('name').orderBy('name').execute();
    assert.deepEqual(
      still.map((z) => z.name),
      backedUp,
      'a refused restore changes nothing',
    );
  } finally {
    await target.drop();
  }
});
