/**
 * The VM console (docs/compute.md "Console"):
 *   POST /v1/vms/{uuid}/actions/console  → 200 {url, token, expiresAt, protocol: 'vnc'}
 *   GET  /v1/console?token=…             WebSocket: the VM's RFB (VNC) stream in binary frames
 * The token (resources/compute/console/tokens.ts) is the only credential of the WebSocket (a
 * browser cannot send an Authorization header there), so /v1/console is public to the bearer
 * check and its token is checked, spent, and the VM's host found and its agent's tunnel opened
 * before the WebSocket handshake is answered: every refusal is an HTTP error in the one shape
 * (a WebSocket client sees its status). Once open, bytes flow both ways with backpressure, and
 * either side closing closes the other.
 */
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { RawData, WebSocket } from 'ws';
import { Empty } from '../contract/common.js';
import { CONSOLE_WEBSOCKET_PATH, VmConsole } from '../contract/console.js';
import type { Db } from '../db/pool.js';
import { CloudError } from '../kernel/errors.js';
import { isUuid } from '../kernel/ids.js';
import { assertVmVisible, consoleTarget } from '../resources/compute/console/target.js';
import { CONSOLE_TOKEN_TTL_MS, type ConsoleTokens } from '../resources/compute/console/tokens.js';
import { callerOf } from './auth.js';

/** Opens the byte stream of a VM's VNC on its host (drivers/kvm/console-tunnel.ts). */
export interface ConsoleOpener {
  open(host: { uuid: string; managementIp: string }, vmUuid: string, requestId: string): Promise<Duplex>;
}

/** a WebSocket client this far behind makes us stop reading from the VM until it catches up */
const HIGH_WATER_BYTES = 1024 * 1024;
const TUNNEL = Symbol('nimbus.consoleTunnel');
type WithTunnel = FastifyRequest & { [TUNNEL]?: { vmUuid: string; agent: Duplex } };

/** ws: or wss:, as the client reached us (a TLS-terminating proxy says so in X-Forwarded-Proto) */
function webSocketScheme(request: FastifyRequest): 'ws' | 'wss' {
  const forwarded = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  const proto = first === 'https' || first === 'http' ? first : request.protocol;
  return proto === 'https' ? 'wss' : 'ws';
}

/** Relays between the browser's WebSocket and the agent's tunnel until either ends. */
function relay(socket: WebSocket, agent: Duplex, onClose: (why: string, bytes: object) => void): void {
  const bytes = { toVm: 0, fromVm: 0 };
  agent.on('data', (chunk: Buffer) => {
    bytes.fromVm += chunk.length;
    socket.send(chunk, { binary: true }, () => {
      if (agent.isPaused() && socket.bufferedAmount < HIGH_WATER_BYTES / 2) agent.resume();
    });
    if (socket.bufferedAmount > HIGH_WATER_BYTES) agent.pause();
  });
  socket.on('message', (data: RawData) => {
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    bytes.toVm += chunk.length;
    if (!agent.write(chunk)) {
      socket.pause();
      agent.once('drain', () => socket.resume());
    }
  });
  let closed = false;
  const close = (why: string) => {
    if (closed) return;
    closed = true;
    agent.destroy();
    // 1000 when the VM's side ended (the guest powered off), 1011 when something failed
    if (socket.readyState === socket.OPEN) socket.close(why === 'vm closed' ? 1000 : 1011, why);
    else socket.terminate();
    onClose(why, bytes);
  };
  agent.on('close', () => close('vm closed'));
  agent.on('error', (err) => close(`host error: ${err.message}`.slice(0, 120)));
  socket.on('close', () => close('client closed'));
  socket.on('error', (err) => close(`client error: ${err.message}`.slice(0, 120)));
}

export function registerConsoleRoutes(
  app: FastifyInstance,
  deps: { db: Db; tokens: ConsoleTokens; consoles: ConsoleOpener },
): void {
  const { db, tokens } = deps;
  app.post(
    '/v1/vms/:uuid/actions/console',
    {
      config: { kind: 'vm' },
      // another account's VM is a 404 before the body is looked at (as for every action; the
      // admin sees every VM, so its bad body is a 400 naming the field)
      preValidation: async (request) => {
        const caller = callerOf(request);
        const { uuid } = request.params as { uuid?: string };
        if (!caller.isAdmin && typeof uuid === 'string' && isUuid(uuid))
          await assertVmVisible(db, uuid, caller);
      },
      schema: {
        tags: ['vms'],
        summary: "open a Running VM's console: a WebSocket URL (VNC, for noVNC) with a single-use token",
        description: `Answers at once (no job). Open \`url\` (${CONSOLE_WEBSOCKET_PATH}?token=…) as a WebSocket within ${CONSOLE_TOKEN_TTL_MS / 1000} s: it carries the VM's RFB (VNC) stream in binary frames. The token opens one console, for this VM only, and only for the account that asked (the admin: any VM). Only VMs on kvm hosts have a console (a simulated host: 409 VM_CONSOLE_UNAVAILABLE). Refusals of the WebSocket come as HTTP errors before the handshake: 401 CONSOLE_TOKEN_MISSING / CONSOLE_TOKEN_INVALID / CONSOLE_TOKEN_EXPIRED / CONSOLE_TOKEN_USED, 404 VM_NOT_FOUND, 409 VM_INVALID_STATE / VM_CONSOLE_UNAVAILABLE / AGENT_VM_NOT_RUNNING, 503 HOST_UNREACHABLE.`,
        params: Type.Object({ uuid: Type.String({ format: 'uuid' }) }),
        body: Empty,
        response: { 200: VmConsole },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const { uuid } = request.params as { uuid: string };
      const target = await consoleTarget(db, uuid, caller);
      const { token, expiresAt } = await tokens.issue(uuid, caller);
      request.log.info({ vmUuid: uuid, hostUuid: target.host.uuid }, 'console token issued');
      const url = `${webSocketScheme(request)}://${request.host}${CONSOLE_WEBSOCKET_PATH}?token=${encodeURIComponent(token)}`;
      return { url, token, expiresAt: expiresAt.toISOString(), protocol: 'vnc' as const };
    },
  );

  app.route({
    method: 'GET',
    url: CONSOLE_WEBSOCKET_PATH,
    schema: {
      tags: ['vms'],
      operationId: 'openVmConsoleWebSocket',
      summary: 'the VM console WebSocket (from POST /v1/vms/{uuid}/actions/console)',
      querystring: Type.Object(
        { token: Type.Optional(Type.String({ maxLength: 2048 })) },
        { additionalProperties: false },
      ),
    },
    preHandler: async (request) => {
      // a plain GET is refused before its token is looked at, so it does not spend the token
      if (!request.ws) {
        throw new CloudError(
          'Invalid',
          'CONSOLE_WEBSOCKET_REQUIRED',
          `${CONSOLE_WEBSOCKET_PATH} is a WebSocket: open it with an Upgrade: websocket request`,
        );
      }
      const claims = await tokens.redeem((request.query as { token?: string }).token);
      const target = await consoleTarget(db, claims.vmUuid, claims);
      const agent = await deps.consoles.open(target.host, claims.vmUuid, request.id);
      agent.on('error', () => agent.destroy()); // a reset before the relay starts must not throw
      // the client may go away before the handshake completes: the tunnel goes with it
      const client = request.raw.socket;
      if (client.destroyed) agent.destroy();
      else client.once('close', () => agent.destroy());
      (request as WithTunnel)[TUNNEL] = { vmUuid: claims.vmUuid, agent };
      request.log.info({ vmUuid: claims.vmUuid, hostUuid: target.host.uuid }, 'console tunnel open');
    },
    handler: async () => {
      throw new CloudError('Internal', 'CONSOLE_NOT_UPGRADED', 'the console request was not upgraded');
    },
    wsHandler: (socket, request) => {
      const tunnel = (request as WithTunnel)[TUNNEL];
      if (tunnel === undefined) {
        socket.close(1011, 'no console tunnel');
        return;
      }
      const started = Date.now();
      const log = request.log.child({ vmUuid: tunnel.vmUuid });
      log.info('console opened');
      relay(socket, tunnel.agent, (why, bytes) =>
        log.info({ why, bytes, ms: Date.now() - started }, 'console closed'),
      );
    },
  });
}
