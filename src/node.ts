/**
 * Starts one management node: database (embedded or external) → migrations → admin account →
 * engine, drivers and services → membership (which also recovers unfinished jobs) → HTTP.
 * The only place that picks implementations. Tests start nodes in-process through it.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import pino, { type Logger } from 'pino';
import { DbProbe } from './api/db-probe.js';
import { type NotReadyReason, Readiness } from './api/health-routes.js';
import { INVENTORY_SQL, Inventory, inventoryFromRows } from './api/inventory-metrics.js';
import { Metrics } from './api/metrics.js';
import { buildServer } from './api/server.js';
import { FencedCheck, sessionName } from './cluster/fence.js';
import { DEFAULT_DEAD_AFTER_MS, defaultNodeName, Membership } from './cluster/membership.js';
import { EventRelay } from './cluster/relay.js';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './db/embedded.js';
import { migrateToLatest } from './db/migrate.js';
import { type DbHandle, openDb } from './db/pool.js';
import { BackupStorageDriverRegistry } from './drivers/backup-storage.js';
import { AgentSelfFence } from './drivers/fence/agent-self-fence.js';
import { IpmiFence } from './drivers/fence/ipmi.js';
import { SimulatorFence } from './drivers/fence/simulator.js';
import { AgentClient } from './drivers/kvm/agent-client.js';
import { AgentBackupStorage } from './drivers/kvm/backup-storage.js';
import { KvmConsoles } from './drivers/kvm/console-tunnel.js';
import { DbAgentCredentials } from './drivers/kvm/credentials.js';
import { KvmHostDriver } from './drivers/kvm/driver.js';
import { DriverRegistry } from './drivers/port.js';
import { SimulatedBackupStorage } from './drivers/simulator/backup-storage.js';
import { Simulator } from './drivers/simulator/simulator.js';
import { Engine } from './engine/engine.js';
import { EventBus } from './engine/events.js';
import { FaultRegistry } from './engine/faults.js';
import { parallelismByKind, QueueSet } from './engine/queues.js';
import { newId } from './kernel/ids.js';
import { loadSettings, type Settings } from './kernel/settings.js';
import { forgetOnEvents } from './resources/admission-cache.js';
import { computeServices } from './resources/catalog/compute.js';
import { foundationServices } from './resources/catalog/foundation.js';
import { networkServices } from './resources/catalog/network.js';
import { operationsServices } from './resources/catalog/operations.js';
import { selfServiceServices } from './resources/catalog/self-service.js';
import { storageServices } from './resources/catalog/storage.js';
import { volumesServices } from './resources/catalog/volumes.js';
import { ensureAdmin } from './resources/identity/account/bootstrap.js';
import { Sessions } from './resources/identity/session/sessions.js';
import { HostNetworkSync } from './resources/network/host-sync.js';
import { applianceHooks } from './resources/network/virtual-router/appliance.js';
import { TagService } from './resources/operations/tag/service.js';
import { transitionalReclaimers } from './resources/reclaim.js';
import { kindRegistry } from './resources/schemas.js';
import type { FlowDeps, KindService, ServiceContext } from './resources/service.js';

export { VERSION } from './version.js';

import { VERSION } from './version.js';

/** Operations one resource may run at once, by queue-key kind; every other kind runs one at a time. */
export const QUEUE_PARALLELISM: Record<string, number> = { host: 10 };

/**
 * A small pool: every statement is a round trip whose cost on the node's main thread is the
 * socket write, and more connections only mean more PostgreSQL backends contending for the same
 * few cores. On the 2-core benchmark machine 8 connections beat 20 (10,000 creates: accept p99
 * 1.7 s instead of 3.5–5 s, wall time no worse; BENCHMARKS.md). Raise it with --db-pool-size
 * on bigger database servers.
 */
export const DEFAULT_DB_POOL_SIZE = 8;

export interface NodeOptions {
  /** external PostgreSQL; when absent an embedded one runs under `dataDir` */
  databaseUrl?: string;
  dataDir: string;
  host: string;
  port: number;
  nodeName?: string;
  adminPassword?: string;
  tokenTtlSeconds?: number;
  simulatorLatencyMs?: number;
  log?: Logger;
  /** connections to PostgreSQL (default DEFAULT_DB_POOL_SIZE) */
  dbPoolSize?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** tunables (default: DEFAULT_SETTINGS overlaid with NIMBUS_SETTINGS) */
  settings?: Settings;
  /** when set, /metrics requires `Authorization: Bearer <metricsToken>` */
  metricsToken?: string;
  /** the caller creates the demo environment after the start: not ready until it calls demoCreated() */
  demo?: boolean;
  /**
   * another node declared this one dead and fenced it (cluster/fence.ts): it can no longer reach
   * the database and has stopped its work; main.ts exits (a supervisor starts a fresh node)
   */
  onFenced?: () => void;
}

export interface RunningNode {
  url: string;
  port: number;
  nodeId: string;
  app: FastifyInstance;
  services: ServiceContext;
  kindServices: KindService[];
  sessions: Sessions;
  faults: FaultRegistry;
  db: DbHandle;
  adminPassword?: string;
  adminCreated: boolean;
  /** what /v1/ready answers */
  readiness: Readiness;
  /** the demo environment exists (or was not needed): lifts the readiness condition */
  demoCreated(): void;
  /** the embedded PostgreSQL's postmaster, when the node runs one */
  embeddedPid?: number;
  stop(): Promise<void>;
}

/**
 * Opens every connection of the pool at once (a create burst on a cold node otherwise opens them
 * while its first admissions wait) and lets each service load what its first requests would.
 */
async function warmUp(db: DbHandle, poolSize: number, services: KindService[]): Promise<void> {
  await Promise.all([
    ...Array.from({ length: poolSize }, () => db.db.connection().execute((c) => sql`select 1`.execute(c))),
    ...services.map((s) => s.warm?.()),
  ]);
}

export async function startNode(o: NodeOptions): Promise<RunningNode> {
  const log = o.log ?? pino({ level: 'info' });
  mkdirSync(o.dataDir, { recursive: true });
  let embedded: EmbeddedDatabase | undefined;
  let url = o.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedDatabase(join(o.dataDir), (m) => log.debug({ component: 'postgres' }, m));
    url = embedded.url;
    log.info('embedded PostgreSQL started');
  }
  let lostLogged = 0;
  const nodeId = newId();
  let onFenced = () => {};
  const fence = new FencedCheck(() => onFenced());
  const db = openDb(url, {
    max: o.dbPoolSize ?? DEFAULT_DB_POOL_SIZE,
    // the fence ends this node's sessions by this name, and refuses it new ones once it is stopped
    applicationName: sessionName(nodeId),
    verify: fence.verify,
    // a lost connection is dropped and replaced (pool.ts); say so, at most once a second
    onConnectionError: (err) => {
      if (Date.now() - lostLogged < 1000) return;
      lostLogged = Date.now();
      log.warn({ err: err.message }, 'a database connection was lost; it will be replaced');
    },
  });
  const probe = new DbProbe(url); // health and metrics never queue behind user work
  // the heartbeat never queues behind user work either (a busy node must not look dead)
  const beat = openDb(url, {
    max: 1,
    applicationName: sessionName(nodeId),
    verify: fence.verify,
    prepare: false,
  });
  const pending: NotReadyReason[] = ['migrating', 'recovering', 'warming'];
  if (o.demo) pending.push('creating-demo');
  const readiness = new Readiness(pending);
  const started: { relay?: EventRelay } = {};
  let relay: EventRelay | undefined;
  try {
    const applied = await migrateToLatest(db.db);
    if (applied.length > 0) log.info({ applied }, 'database migrated');
    readiness.done('migrating');
    fence.arm(nodeId);
    const admin = await ensureAdmin(db.db, o.adminPassword);

    const faults = new FaultRegistry();
    const events = new EventBus();
    const queues = new QueueSet(parallelismByKind(QUEUE_PARALLELISM));
    const simulator = new Simulator({ db: db.db, faults, latencyMs: o.simulatorLatencyMs ?? 0 });
    // real hosts and storages: nimbus-agents over HTTP, one keep-alive client for all of them
    const agentClient = new AgentClient();
    const agentCredentials = new DbAgentCredentials(db.db);
    const drivers = new DriverRegistry({ simulator, kvm: new KvmHostDriver(agentClient, agentCredentials) });
    const address = `http://${o.host === '0.0.0.0' ? '127.0.0.1' : o.host}:${o.port}`;
    const membership = new Membership({
      db: db.db,
      nodeId,
      beatDb: beat.db,
      version: VERSION,
      onFenced: () => fence.fenced(),
      onPeers: (count) => relay?.setPeers(count),
      name: o.nodeName ?? defaultNodeName(o.port),
      address,
      log,
      heartbeatMs: o.heartbeatMs ?? 2000,
      deadAfterMs: o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS,
      onTakeOver: (deadAfterMs) => engine.recover(deadAfterMs),
    });
    const settings = o.settings ?? loadSettings(process.env.NIMBUS_SETTINGS);
    const deps: FlowDeps = {
      drivers,
      fences: {
        simulator: new SimulatorFence(simulator, faults),
        ipmi: new IpmiFence(),
        agent: new AgentSelfFence(settings.hostSelfFenceSeconds, settings.hostSelfFenceMarginSeconds),
      },
      backupStorages: new BackupStorageDriverRegistry({
        simulator: new SimulatedBackupStorage({ db: db.db, faults, latencyMs: o.simulatorLatencyMs ?? 0 }),
        agent: new AgentBackupStorage(agentClient, agentCredentials),
      }),
      simulator,
      events,
      log,
      settings,
      network: new HostNetworkSync(db.db, drivers, log),
    };
    const inventory = new Inventory(
      async () => inventoryFromRows(await probe.rows(INVENTORY_SQL)),
      deps.settings.metricsCacheSeconds,
    );
    const metrics = new Metrics(db.pool, queues, inventory);
    const engine = new Engine<FlowDeps>({
      db: db.db,
      deps,
      events,
      faults,
      queues,
      nodeId: membership.nodeId,
      log,
      metrics,
      maxRunningJobs: deps.settings.maxRunningJobs,
      deadAfterMs: o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS,
    });

    const stopForgetting = forgetOnEvents(events); // the admission cache drops what any node's changes touch
    // what this node publishes reaches the other nodes' streams, caches and waiters, and theirs this one
    relay = new EventRelay({
      db: db.db,
      connectionString: url,
      bus: events,
      nodeId,
      applicationName: sessionName(nodeId),
      log,
    });
    started.relay = relay;
    await relay.start();
    onFenced = () => {
      log.error('this node was declared dead and fenced by another node: it stops its work');
      readiness.wait('draining');
      void engine.drain(0);
      o.onFenced?.();
    };
    const registry = kindRegistry();
    const ctx: ServiceContext = { db: db.db, engine, events, registry, deps };
    const tags = new TagService(ctx);
    const services: KindService[] = [
      ...foundationServices(ctx, tags, o.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS),
      ...storageServices(ctx),
      ...computeServices(ctx),
      ...volumesServices(ctx),
      ...networkServices(ctx),
      ...selfServiceServices(ctx),
      ...operationsServices(ctx),
    ];
    // the router chains reach the VM family through these (virtual-router/appliance.ts)
    Object.assign(deps, applianceHooks(ctx, services));
    // rows dead owners left transitional, reclaimed with every recovery pass (docs/engine.md)
    for (const [name, reclaim] of transitionalReclaimers(db.db, deps)) engine.addReclaimer(name, reclaim);

    const sessions = new Sessions(db.db, o.tokenTtlSeconds ?? 12 * 3600);
    const app = await buildServer({
      db: db.db,
      simulator,
      log,
      engine,
      events,
      faults,
      sessions,
      metrics,
      registry,
      services,
      tags,
      version: VERSION,
      limits: deps.settings,
      probe,
      ...(o.metricsToken ? { metricsToken: o.metricsToken } : {}),
      readiness,
      consoles: new KvmConsoles(agentCredentials),
    });
    // compiling every route's schemas keeps the event loop busy for a while: done before the
    // node joins, so that its heartbeats are not held back (it would look dead to the others)
    await app.ready();
    await membership.join(); // registers this node and takes over unfinished jobs of dead ones
    readiness.done('recovering');
    await app.listen({ host: o.host, port: o.port });
    for (const s of services) s.start?.();
    // the first burst must not pay for connections and snapshots: ready only once they exist
    await warmUp(db, o.dbPoolSize ?? DEFAULT_DB_POOL_SIZE, services).catch((err) =>
      log.warn({ err }, 'warming up failed; the first requests will load what they need'),
    );
    readiness.done('warming');
    const port = (app.server.address() as { port: number }).port;
    const purge = setInterval(() => void sessions.purgeExpired().catch(() => {}), 3600_000);
    purge.unref();

    let stopped = false;
    return {
      url: `http://${o.host === '0.0.0.0' ? '127.0.0.1' : o.host}:${port}`,
      port,
      nodeId: membership.nodeId,
      app,
      services: ctx,
      kindServices: services,
      sessions,
      faults,
      db,
      ...(admin.password ? { adminPassword: admin.password } : {}),
      adminCreated: admin.created,
      readiness,
      demoCreated: () => readiness.done('creating-demo'),
      ...(embedded ? { embeddedPid: embedded.pid } : {}),
      async stop() {
        if (stopped) return;
        stopped = true;
        // not ready before anything else: a load balancer stops sending work while we drain
        readiness.wait('draining');
        await membership.draining().catch(() => {});
        clearInterval(purge);
        stopForgetting();
        await Promise.allSettled(services.map((s) => s.stop?.()));
        // the HTTP server answers while the jobs drain (/v1/ready: 503 draining; new mutating
        // requests: 503 NODE_DRAINING), and closes after
        await engine.drain(10_000);
        await app.close();
        // from here this node's row says stopped because it left: a heartbeat still in flight or a
        // last connection's check that finds it so is no fence (else a clean stop could exit 3)
        onFenced = () => {};
        await membership.leave().catch(() => {});
        await relay?.stop();
        agentClient.close();
        await db.close();
        await beat.close().catch(() => {});
        await probe.close().catch(() => {});
        if (embedded) await embedded.stop();
      },
    };
  } catch (err) {
    await started.relay?.stop().catch(() => {});
    await db.close().catch(() => {});
    await beat.close().catch(() => {});
    await probe.close().catch(() => {});
    if (embedded) await embedded.stop().catch(() => {});
    throw err;
  }
}
