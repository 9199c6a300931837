/**
 * A replicated PostgreSQL on this machine for the HA database test (docs/cluster.md "A highly
 * available database"): one etcd and Patroni members run with deploy/patroni/patroni.yml exactly
 * as shipped, each member's values from the environment (its name, ports, data directory under a
 * temp directory). Patroni and its PostgreSQL run as the `postgres` OS user (PostgreSQL refuses
 * root). `stop()` ends every process the lab started — Patroni, the PostgreSQL servers it started
 * (by their postmaster.pid) and etcd — and removes the directory.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../../src/db/embedded.js';

export const PG_BIN = process.env.NIMBUS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const PATRONI_YML = fileURLToPath(new URL('../../../../deploy/patroni/patroni.yml', import.meta.url));
const SUPERUSER_PASSWORD = 'ha-test-superuser';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why the lab cannot run here (false: it can). */
export function patroniSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (runs PostgreSQL as the postgres user)';
  for (const tool of ['patroni', 'etcd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `${tool} is missing (apt-get install patroni etcd-server)`;
  }
  if (!existsSync(join(PG_BIN, 'postgres'))) return `${PG_BIN}/postgres is missing (postgresql-15)`;
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'no postgres OS user';
  if (!existsSync(PATRONI_YML)) return `${PATRONI_YML} is missing`;
  return false;
}

function userIds(name: string): { uid: number; gid: number } {
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

export interface Member {
  name: string;
  pgPort: number;
  restPort: number;
  dataDir: string;
  process: ChildProcess;
}

interface PatroniCluster {
  members: Array<{ name: string; role: string; state: string; timeline?: number; lag?: number | string }>;
}

export class PatroniLab {
  readonly members: Member[] = [];
  private etcd: ChildProcess | undefined;
  private readonly postgres = userIds('postgres');

  private constructor(
    readonly dir: string,
    private readonly etcdPort: number,
  ) {}

  /** etcd and `count` Patroni members; resolves once they are started (not yet replicating). */
  static async start(count = 2): Promise<PatroniLab> {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-patroni-'));
    const lab = new PatroniLab(dir, await freePort());
    try {
      chownSync(dir, lab.postgres.uid, lab.postgres.gid);
      await lab.startEtcd();
      // the shipped file, readable by the postgres user wherever the checkout lives
      copyFileSync(PATRONI_YML, join(dir, 'patroni.yml'));
      chownSync(join(dir, 'patroni.yml'), lab.postgres.uid, lab.postgres.gid);
      for (let i = 1; i <= count; i++) await lab.startMember(`pg${i}`);
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  private log(name: string): number {
    return openSync(join(this.dir, `${name}.log`), 'a');
  }

  private async startEtcd(): Promise<void> {
    const peer = await freePort();
    const client = `http://127.0.0.1:${this.etcdPort}`;
    this.etcd = spawn(
      'etcd',
      [
        ...['--name', 'etcd1', '--data-dir', join(this.dir, 'etcd')],
        ...['--listen-client-urls', client, '--advertise-client-urls', client],
        ...['--listen-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-cluster', `etcd1=http://127.0.0.1:${peer}`],
      ],
      { stdio: ['ignore', this.log('etcd'), this.log('etcd')] },
    );
    await this.until('etcd to answer', 30_000, async () => {
      const res = await fetch(`${client}/health`).catch(() => undefined);
      return res?.ok === true;
    });
  }

  private async startMember(name: string): Promise<void> {
    const pgPort = await freePort();
    const restPort = await freePort();
    const home = join(this.dir, name);
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, this.postgres.uid, this.postgres.gid);
    const dataDir = join(home, 'data');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      HOME: home,
      PATRONI_NAME: name,
      PATRONI_ETCD3_HOSTS: `127.0.0.1:${this.etcdPort}`,
      PATRONI_RESTAPI_LISTEN: `127.0.0.1:${restPort}`,
      PATRONI_RESTAPI_CONNECT_ADDRESS: `127.0.0.1:${restPort}`,
      PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${pgPort}`,
      PATRONI_POSTGRESQL_CONNECT_ADDRESS: `127.0.0.1:${pgPort}`,
      PATRONI_POSTGRESQL_DATA_DIR: dataDir,
      PATRONI_POSTGRESQL_BIN_DIR: PG_BIN,
      PATRONI_POSTGRESQL_PGPASS: join(home, 'pgpass'),
      PATRONI_SUPERUSER_USERNAME: 'postgres',
      PATRONI_SUPERUSER_PASSWORD: SUPERUSER_PASSWORD,
      PATRONI_REPLICATION_USERNAME: 'replicator',
      PATRONI_REPLICATION_PASSWORD: 'ha-test-replication',
    };
    // umask 077: PostgreSQL refuses a data directory others can read (pg_basebackup's copy too)
    const child = spawn('sh', ['-c', 'umask 077; exec patroni "$0"', join(this.dir, 'patroni.yml')], {
      env,
      cwd: home,
      uid: this.postgres.uid,
      gid: this.postgres.gid,
      stdio: ['ignore', this.log(name), this.log(name)],
    });
    this.members.push({ name, pgPort, restPort, dataDir, process: child });
  }

  /** The multi-host URL of database `db` (every member, in order, read-write). */
  url(db: string): string {
    const hosts = this.members.map((m) => `127.0.0.1:${m.pgPort}`).join(',');
    return `postgres://postgres:${SUPERUSER_PASSWORD}@${hosts}/${db}?target_session_attrs=read-write`;
  }

  /** Patroni's view of the cluster, from the first member that answers. */
  async cluster(): Promise<PatroniCluster | undefined> {
    for (const m of this.members) {
      const res = await fetch(`http://127.0.0.1:${m.restPort}/cluster`).catch(() => undefined);
      if (res?.ok) return (await res.json()) as PatroniCluster;
    }
    return undefined;
  }

  /** Runs one statement on member `m` alone (undefined when it does not answer). */
  async query<R extends pg.QueryResultRow>(m: Member, text: string): Promise<R[] | undefined> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: m.pgPort,
      user: 'postgres',
      password: SUPERUSER_PASSWORD,
      database: 'postgres',
      connectionTimeoutMillis: 2000,
      query_timeout: 2000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query<R>(text)).rows;
    } catch {
      return undefined;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** The member that is primary now (read-write), if one is. */
  async primary(except?: Member): Promise<Member | undefined> {
    for (const m of this.members) {
      if (m === except) continue;
      const rows = await this.query<{ standby: boolean }>(m, 'select pg_is_in_recovery() as standby');
      if (rows?.[0]?.standby === false) return m;
    }
    return undefined;
  }

  /**
   * Waits until one member is primary and every other streams to it as a synchronous standby
   * (pg_stat_replication on the primary); returns the primary.
   */
  async waitReplicating(timeoutMs = 90_000): Promise<Member> {
    return this.until('a primary with a synchronous standby streaming', timeoutMs, async () => {
      const primary = await this.primary();
      if (!primary) return undefined;
      const rows = await this.query<{ name: string }>(
        primary,
        `select application_name as name from pg_stat_replication where state = 'streaming' and sync_state = 'sync'`,
      );
      return rows && rows.length === this.members.length - 1 ? primary : undefined;
    });
  }

  /** The postmaster's pid of member `m` (its postmaster.pid), if it runs. */
  postmasterPid(m: Member): number | undefined {
    try {
      const pid = Number(readFileSync(join(m.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Polls `probe` every 100 ms until it returns a value; throws naming `what` and the logs' tails. */
  async until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline)
        throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}${this.tails()}`);
      await sleep(100);
    }
  }

  /** The end of every log of the lab, for failure messages. */
  tails(): string {
    let out = '';
    for (const name of ['etcd', ...this.members.map((m) => m.name)]) {
      try {
        out += `\n--- ${name}.log (tail) ---\n${readFileSync(join(this.dir, `${name}.log`), 'utf8').slice(-3000)}`;
      } catch {}
    }
    return out;
  }

  /** Stops Patroni (it stops its PostgreSQL), then whatever is left of it, then etcd; removes the directory. */
  async stop(): Promise<void> {
    const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
    const exited = (c: ChildProcess) =>
      running(c) ? new Promise<void>((r) => c.once('exit', () => r())) : Promise.resolve();
    for (const m of this.members) if (running(m.process)) m.process.kill('SIGTERM');
    await Promise.race([Promise.all(this.members.map((m) => exited(m.process))), sleep(30_000)]);
    for (const m of this.members) {
      if (running(m.process)) m.process.kill('SIGKILL');
      await exited(m.process);
      // a PostgreSQL Patroni started and did not stop (Patroni killed, or this very test killed it)
      const pid = this.postmasterPid(m);
      if (pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(m.dataDir))
        process.kill(pid, 'SIGKILL');
    }
    if (this.etcd && running(this.etcd)) {
      this.etcd.kill('SIGTERM');
      await Promise.race([exited(this.etcd), sleep(10_000)]);
      if (running(this.etcd)) this.etcd.kill('SIGKILL');
      await exited(this.etcd);
    }
    if (process.env.KEEP_PATRONI_LAB) console.log(`patroni lab kept in ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
