/**
 * nimbus-agent: the program that runs as root on a hypervisor host and answers the management
 * node's host commands (src/contract/agent.ts) over authenticated HTTP. This file only reads the
 * flags, picks the parts and starts the server; each part owns its commands.
 * It imports contract/ and kernel/ only, never the server code (DESIGN.md §5), so it bundles
 * into one file (dist/nimbus-agent.mjs) that a host can run with nothing but node.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { withAppliances } from './appliance/index.js';
import { backupStorageHandlers, backupStorageRoutes } from './backup-storage/index.js';
import { type AcceleratorChoice, detectAccelerator, hostHandlers } from './host/facts.js';
import { createNetworkPart } from './network/index.js';
import { consoleUpgrade } from './qemu/console.js';
import { createQemuPart } from './qemu/index.js';
import { fileLease, killThroughHandlers, SelfFence } from './self-fence.js';
import { createAgentServer } from './server.js';
import { storageHandlers } from './storage/index.js';

const USAGE = `usage: nimbus-agent [options]
  --listen host:port      address to serve on (default 0.0.0.0:7070)
  --state-dir dir         pidfiles, QMP sockets, serial logs, VM specs (default /var/lib/nimbus-agent)
  --secret-file file      the bearer secret (or env NIMBUS_AGENT_SECRET); required
  --accel auto|kvm|tcg    how guests run (default auto: kvm only with usable /dev/kvm and vmx/svm)
  --name-prefix p         prefix of every netns/tap/… name this agent makes: 1-5 of [a-z0-9],
                          starting with a letter, unique per agent on the machine (default nim)
  --vtep-ip addr          this host's VXLAN tunnel endpoint address (needed for vxlan L2s)
  --backup-storage-dir d  also keep a backup storage in d: bs.* commands and GET/HEAD/PUT /v1/images/<uuid>
  --stop-timeout seconds  how long vm.stop waits for an ACPI shutdown before killing (default 60)
  --self-fence-after s    host HA: kill every guest after s seconds without a management node's
                          command (and without renewing the lease, with --self-fence-lease);
                          must equal the management's hostSelfFenceSeconds (default 0: off)
  --self-fence-lease file a lease file on the shared storage, rewritten every few seconds
  --help                  this text`;

const MAX_STATE_DIR = 107 - '/vms/'.length - 36 - '/qmp.sock'.length;

export interface AgentConfig {
  host: string;
  port: number;
  stateDir: string;
  secret: string;
  accel: AcceleratorChoice;
  namePrefix: string;
  vtepIp: string | undefined;
  backupStorageDir: string | undefined;
  stopTimeoutMs: number;
  selfFenceAfterMs: number;
  selfFenceLease: string | undefined;
}

function fail(message: string): never {
  process.stderr.write(`nimbus-agent: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function readConfig(argv: string[]): Promise<AgentConfig> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '0.0.0.0:7070' },
      'state-dir': { type: 'string', default: '/var/lib/nimbus-agent' },
      'secret-file': { type: 'string' },
      accel: { type: 'string', default: 'auto' },
      'name-prefix': { type: 'string', default: 'nim' },
      'vtep-ip': { type: 'string' },
      'backup-storage-dir': { type: 'string' },
      'stop-timeout': { type: 'string', default: '60' },
      'self-fence-after': { type: 'string', default: '0' },
      'self-fence-lease': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const listen = /^(.+):(\d{1,5})$/.exec(values.listen);
  if (listen === null) fail(`--listen must be host:port, got ${values.listen}`);
  const accel = values.accel;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') fail(`--accel must be auto, kvm or tcg`);
  if (!/^[a-z][a-z0-9]{0,4}$/.test(values['name-prefix'])) {
    fail('--name-prefix must be 1-5 of [a-z0-9] starting with a letter (interface names have 15 characters)');
  }
  const stateDir = resolve(values['state-dir']);
  if (stateDir.includes(',')) fail('--state-dir must not contain a comma (QEMU option syntax)');
  // <state-dir>/vms/<uuid>/qmp.sock must fit a unix socket path (107 bytes)
  if (Buffer.byteLength(stateDir) > MAX_STATE_DIR)
    fail(`--state-dir must be at most ${MAX_STATE_DIR} bytes long`);
  const stopTimeout = Number(values['stop-timeout']);
  if (!Number.isFinite(stopTimeout) || stopTimeout <= 0) fail('--stop-timeout must be a positive number');
  const selfFence = Number(values['self-fence-after']);
  if (!Number.isFinite(selfFence) || selfFence < 0)
    fail('--self-fence-after must be 0 (off) or a number of seconds');
  if (values['self-fence-lease'] !== undefined && selfFence === 0)
    fail('--self-fence-lease needs --self-fence-after');
  let secret = process.env.NIMBUS_AGENT_SECRET ?? '';
  if (values['secret-file'] !== undefined) {
    secret = (await readFile(values['secret-file'], 'utf8').catch((err: Error) => fail(err.message))).trim();
  }
  if (secret.length === 0) fail('no secret: pass --secret-file or set NIMBUS_AGENT_SECRET');
  return {
    host: listen[1]!.replace(/^\[(.*)\]$/, '$1'),
    port: Number(listen[2]),
    stateDir,
    secret,
    accel,
    namePrefix: values['name-prefix'],
    vtepIp: values['vtep-ip'],
    backupStorageDir:
      values['backup-storage-dir'] === undefined ? undefined : resolve(values['backup-storage-dir']),
    stopTimeoutMs: stopTimeout * 1000,
    selfFenceAfterMs: selfFence * 1000,
    selfFenceLease:
      values['self-fence-lease'] === undefined ? undefined : resolve(values['self-fence-lease']),
  };
}

/**
 * The agents (and backup storages) of one cloud share the secret, so a host fetching an image
 * from a backup storage's /v1/images/<uuid> (image.cache) or sending one there (image.upload)
 * authenticates with it; any other URL gets no credential.
 */
function backupStorageCredential(secret: string): (url: string) => string | undefined {
  return (url) => {
    try {
      return new URL(url).pathname.startsWith('/v1/images/') ? `Bearer ${secret}` : undefined;
    } catch {
      return undefined;
    }
  };
}

/** a peer agent's commands (a live migration's target side) are no contact with the management */
const PEER_COMMANDS = new Set(['vm.prepare-migration']);

function selfFence(
  config: AgentConfig,
  handlers: Parameters<typeof killThroughHandlers>[0],
  log: pino.Logger,
) {
  if (config.selfFenceAfterMs === 0) return undefined;
  const fence = new SelfFence({
    afterMs: config.selfFenceAfterMs,
    checkEveryMs: Math.min(5_000, Math.max(500, config.selfFenceAfterMs / 6)),
    ...(config.selfFenceLease ? { lease: fileLease(config.selfFenceLease, hostname()) } : {}),
    killGuests: killThroughHandlers(handlers),
    log: log.child({ part: 'self-fence' }),
  });
  log.info(
    { afterSeconds: config.selfFenceAfterMs / 1000, lease: config.selfFenceLease ?? null },
    'self-fencing armed',
  );
  return fence;
}

async function main(): Promise<void> {
  let config: AgentConfig;
  try {
    config = await readConfig(process.argv.slice(2));
  } catch (err) {
    fail((err as Error).message);
  }
  const log = pino({ name: 'nimbus-agent' });
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const accelerator = await detectAccelerator(config.accel);
  const network = createNetworkPart({
    namePrefix: config.namePrefix,
    stateDir: config.stateDir,
    ...(config.vtepIp === undefined ? {} : { vtepIp: config.vtepIp }),
    log: log.child({ part: 'network' }),
  });
  const qemu = createQemuPart({
    stateDir: config.stateDir,
    accelerator,
    plugger: network.plugger,
    stopTimeoutMs: config.stopTimeoutMs,
    log: log.child({ part: 'qemu' }),
    secret: config.secret,
    listenHost: config.host,
  });
  const recovered = await qemu.recover();
  log.info({ running: recovered.running.length, stopped: recovered.stopped.length }, 'VMs found at start');
  // a virtual router's appliance VM is its network namespace, not a QEMU guest (appliance/)
  const handlers = withAppliances(
    {
      ...hostHandlers({ accelerator, stateDir: config.stateDir }),
      ...storageHandlers({ live: qemu.live, credentialFor: backupStorageCredential(config.secret) }),
      ...(config.backupStorageDir === undefined
        ? {}
        : backupStorageHandlers({ dir: config.backupStorageDir })),
      ...network.handlers,
      ...qemu.handlers,
    },
    { stateDir: config.stateDir, routers: network.routers, log: log.child({ part: 'appliance' }) },
  );
  const routes =
    config.backupStorageDir === undefined
      ? undefined
      : backupStorageRoutes({ dir: config.backupStorageDir, secret: config.secret });
  const upgrade = consoleUpgrade({ hypervisor: qemu.hypervisor, log: log.child({ part: 'console' }) });
  const fence = selfFence(config, handlers, log);
  const server = createAgentServer({
    secret: config.secret,
    handlers,
    log,
    upgrade,
    ...(routes ? { routes } : {}),
    ...(fence ? { onCommand: (command: string) => PEER_COMMANDS.has(command) || fence.contact() } : {}),
  });
  fence?.start();
  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.port;
    log.info({ host: config.host, port, stateDir: config.stateDir, accelerator }, 'nimbus-agent listening');
  });
  const shutdown = (signal: string) => {
    // Guests keep running: only the agent goes away (a restarted agent finds them again).
    log.info({ signal }, 'nimbus-agent stopping; guests keep running');
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
