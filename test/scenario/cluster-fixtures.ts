/**
 * Several management nodes as child processes (`node dist/src/main.js …`) on one test database
 * (docs/cluster.md): short heartbeats and dead-after so a killed or stopped node is declared dead
 * within seconds; each node on its own port, killed with SIGKILL, stopped with SIGSTOP and
 * resumed with SIGCONT; an observer connection reads the database straight.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/embedded.js';
import { type DbHandle, openDb } from '../../src/db/pool.js';
import { TRANSITIONAL_STATES } from '../../src/kernel/vm-states.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ServerProcess, unfinished, waitUntil } from './crash-fixtures.js';

export const HEARTBEAT_MS = 500;
export const DEAD_AFTER_MS = 5000;

export interface ClusterNode {
  name: string;
  url: string;
  port: number;
  process: ServerProcess;
  /** the node's uuid in management_nodes (its latest incarnation) */
  uuid(): Promise<string>;
}

export interface Cluster {
  db: TestDatabase;
  observer: DbHandle;
  nodes: ClusterNode[];
  /** starts node `i` again (a new incarnation, same name and port) */
  restart(i: number): Promise<ClusterNode>;
  /** adds one more node to the running cluster (the next name, a free port); ready when it resolves */
  add(): Promise<ClusterNode>;
  cleanup(): Promise<void>;
}

/**
 * Starts `count` nodes on a fresh database, one after the other (the first migrates it), and
 * waits until each is ready. `settings` go to every node as NIMBUS_SETTINGS.
 */
export async function startCluster(
  prefix: string,
  count: number,
  settings: Record<string, unknown> = {},
): Promise<Cluster> {
  const db = await createTestDatabase({ max: 1 });
  const observer = openDb(db.url, { max: 3, applicationName: 'cluster-test-observer' });
  const dir = mkdtempSync(join(tmpdir(), `nimbus-${prefix}-`));
  const all: ServerProcess[] = [];
  const env = { NIMBUS_SETTINGS: JSON.stringify(settings) };
  const launch = (name: string, port: number) => {
    const args = [
      ...['--database-url', db.url, '--data-dir', join(dir, name), '--host', '127.0.0.1'],
      ...['--port', String(port), '--node-name', name, '--no-demo'],
      ...['--log-file', join(dir, `${name}.log`), '--db-pool-size', '4'],
      ...['--heartbeat-ms', String(HEARTBEAT_MS), '--dead-after-ms', String(DEAD_AFTER_MS)],
    ];
    const p = new ServerProcess(args, `http://127.0.0.1:${port}`, env);
    all.push(p);
    return p;
  };
  const node = (name: string, port: number, p: ServerProcess): ClusterNode => ({
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    process: p,
    async uuid() {
      const row = await observer.db
        .selectFrom('managementNodes')
        .select('uuid')
        .where('name', '=', name)
        .orderBy('startedAt', 'desc')
        .executeTakeFirstOrThrow();
      return row.uuid;
    },
  });
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const port = await freePort();
    const p = launch(name, port);
    await p.ready(120_000);
    nodes.push(node(name, port, p));
  }
  return {
    db,
    observer,
    nodes,
    async restart(i) {
      const old = nodes[i]!;
      const p = launch(old.name, old.port);
      await p.ready(120_000);
      nodes[i] = node(old.name, old.port, p);
      return nodes[i];
    },
    async add() {
      const name = `${prefix}-${nodes.length}`;
      const port = await freePort();
      const p = launch(name, port);
      await p.ready(120_000);
      nodes.push(node(name, port, p));
      return nodes[nodes.length - 1]!;
    },
    async cleanup() {
      for (const p of all) {
        if (p.running) process.kill(p.pid, 'SIGCONT');
        await p.killHard().catch(() => {});
      }
      await observer.close().catch(() => {});
      await db.drop().catch(() => {});
      if (process.env.KEEP_CLUSTER_LOGS) console.log(`cluster logs kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rows some operation left half-way: what no finished system may hold (empty keys dropped). */
export async function transitionalRows(observer: DbHandle): Promise<Record<string, unknown[]>> {
  const rows: Record<string, unknown[]> = {
    imageCache: await observer.db
      .selectFrom('imageCache')
      .select(['uuid', 'state', 'jobUuid'])
      .where('state', '!=', 'Ready')
      .execute(),
    vms: await observer.db
      .selectFrom('vms')
      .select(['uuid', 'state', 'task'])
      .where((eb) => eb.or([eb('state', 'in', [...TRANSITIONAL_STATES]), eb('task', 'is not', null)]))
      .execute(),
    volumes: await observer.db
      .selectFrom('volumes')
      .select(['uuid', 'state'])
      .where('state', '=', 'Creating')
      .execute(),
    hosts: await observer.db
      .selectFrom('hosts')
      .select(['uuid', 'status'])
      .where('status', '=', 'Connecting')
      .execute(),
    jobs: (await unfinished(observer)).map((j) => ({ uuid: j.uuid, kind: j.kind, state: j.state })),
  };
  for (const key of Object.keys(rows)) if (rows[key]!.length === 0) delete rows[key];
  return rows;
}

const HAPROXY_CONFIG = fileURLToPath(new URL('../../../deploy/haproxy/haproxy.cfg', import.meta.url));
/** Debian's haproxy (.ci/run installs it): false when present, else why tests using it skip */
export const NO_HAPROXY =
  spawnSync('haproxy', ['-v']).status === 0 ? false : 'haproxy is not installed (apt-get install haproxy)';

export interface Balancer {
  /** the balancer's base URL */
  url: string;
  /** HAProxy's own output (tail), for failure messages */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The shipped deploy/haproxy/haproxy.cfg in front of the first three nodes, on a free port;
 * resolves once a burst of health checks through it has reached every one of them (each health
 * answer names its node; leastconn spreads concurrent requests).
 */
export async function startHaproxy(cluster: Cluster): Promise<Balancer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', HAPROXY_CONFIG], {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin',
      NIMBUS_LB_BIND: `127.0.0.1:${port}`,
      NIMBUS_NODE1: `127.0.0.1:${cluster.nodes[0]!.port}`,
      NIMBUS_NODE2: `127.0.0.1:${cluster.nodes[1]!.port}`,
      NIMBUS_NODE3: `127.0.0.1:${cluster.nodes[2]!.port}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const seen = new Set<string>();
  try {
    await waitUntil(
      'all three nodes behind HAProxy',
      async () => {
        const answers = await Promise.all(
          Array.from({ length: 9 }, () => fetch(`${url}/v1/health`).catch(() => undefined)),
        );
        for (const res of answers)
          if (res?.status === 200) seen.add(((await res.json()) as { node: string }).node);
        return seen.size === 3;
      },
      30_000,
      () => `\nseen ${seen.size} nodes; haproxy: ${output}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, output: () => output, stop };
}
