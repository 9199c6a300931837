/**
 * The VM console tunnel: `GET /v1/vms/<uuid>/console` with `Upgrade: nimbus-vnc` (authenticated
 * by the server like every command) becomes, after `101 Switching Protocols`, the raw bytes of the
 * VM's VNC unix socket (`<state-dir>/vms/<uuid>/vnc.sock`, where QEMU serves RFB).
 * A plain byte stream rather than a WebSocket: the management node speaks WebSocket to browsers
 * and only relays bytes here, so the agent needs no WebSocket code and no dependency.
 * Invariants: the 101 goes out only once the VNC socket is connected, so every refusal (no such
 * VM, not running, no VNC socket) is the agent's one error shape; either side closing closes both.
 */
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AGENT_CONSOLE_PATH, AGENT_CONSOLE_UPGRADE } from '../../contract/console.js';
import { CloudError } from '../../kernel/errors.js';
import { refuseUpgrade, type UpgradeHandler } from '../server.js';
import type { AgentLog, Hypervisor } from './hypervisor.js';
import { checkVmUuid } from './layout.js';

/** How long connecting to a VM's VNC socket may take (a local unix socket: at once, or never). */
const CONNECT_TIMEOUT_MS = 5_000;

/** what the tunnel reads of the host's VMs */
export type ConsoleVms = Pick<Hypervisor, 'pid' | 'readSpec' | 'paths'>;

function vncUnavailable(uuid: string, why: string): CloudError {
  return new CloudError('Conflict', 'AGENT_VM_CONSOLE_UNAVAILABLE', `VM ${uuid} has no VNC console: ${why}`, {
    details: { vmUuid: uuid },
  });
}

/** The VM's VNC socket, connected; refused by name when the VM is unknown or not running. */
async function connectVnc(hv: ConsoleVms, uuid: string): Promise<Socket> {
  if ((await hv.pid(uuid)) === undefined) {
    if ((await hv.readSpec(uuid)) === undefined) {
      throw new CloudError('NotFound', 'AGENT_VM_NOT_FOUND', `VM ${uuid} is not defined on this host`, {
        details: { vmUuid: uuid },
      });
    }
    throw new CloudError('Conflict', 'AGENT_VM_NOT_RUNNING', `VM ${uuid} is not running on this host`, {
      details: { vmUuid: uuid },
    });
  }
  const vnc = createConnection(hv.paths(uuid).vnc);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      vnc.destroy();
      reject(vncUnavailable(uuid, `its VNC socket did not accept within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    vnc.once('connect', () => {
      clearTimeout(timer);
      resolve(vnc);
    });
    vnc.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // ENOENT: QEMU runs without the socket (an appliance, or a QEMU from before consoles)
      reject(vncUnavailable(uuid, `${err.code ?? 'error'} on its VNC socket`));
    });
  });
}

/** Relays bytes both ways until either side closes or fails, then closes both. */
function splice(client: Duplex, vnc: Socket, onClose: (bytes: { in: number; out: number }) => void): void {
  const bytes = { in: 0, out: 0 };
  client.on('data', (c: Buffer) => {
    bytes.in += c.length;
  });
  vnc.on('data', (c: Buffer) => {
    bytes.out += c.length;
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    vnc.destroy();
    onClose(bytes);
  };
  for (const side of [client, vnc]) {
    side.on('close', close);
    side.on('error', close);
  }
  client.pipe(vnc);
  vnc.pipe(client);
}

export function consoleUpgrade(opts: { hypervisor: ConsoleVms; log: AgentLog }): UpgradeHandler {
  return (req, socket, head, requestId) => {
    const match = AGENT_CONSOLE_PATH.exec(req.url ?? '');
    if (match === null) return false;
    const open = async () => {
      const protocol = req.headers.upgrade?.toLowerCase();
      if (req.method !== 'GET' || protocol !== AGENT_CONSOLE_UPGRADE) {
        throw new CloudError(
          'Invalid',
          'AGENT_UPGRADE_INVALID',
          `the console is opened with GET and Upgrade: ${AGENT_CONSOLE_UPGRADE}, not ${req.method} and ${protocol ?? 'none'}`,
        );
      }
      const uuid = checkVmUuid(match[1]);
      const vnc = await connectVnc(opts.hypervisor, uuid);
      if (socket.destroyed) {
        vnc.destroy(); // the caller gave up while we connected
        return;
      }
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${AGENT_CONSOLE_UPGRADE}\r\nx-request-id: ${requestId}\r\n\r\n`,
      );
      if (head.length > 0) vnc.write(head);
      const started = Date.now();
      opts.log.info({ requestId, vmUuid: uuid }, 'console opened');
      splice(socket, vnc, (bytes) =>
        opts.log.info({ requestId, vmUuid: uuid, ms: Date.now() - started, bytes }, 'console closed'),
      );
    };
    open().catch((err: unknown) => {
      const code = err instanceof CloudError ? err.code : 'AGENT_INTERNAL';
      opts.log.warn({ requestId, url: req.url, code, err: (err as Error).message }, 'console refused');
      refuseUpgrade(socket, err, requestId);
    });
    return true;
  };
}
