/**
 * The management side of the agent's console tunnel (src/agent/qemu/console.ts): an HTTP upgrade
 * to `GET <agent>/v1/vms/<uuid>/console` with the host's secret, which, once the agent answers
 * `101`, is a socket carrying the VM's VNC bytes. A refusal comes back as the agent's own error
 * (AGENT_VM_NOT_FOUND, AGENT_VM_NOT_RUNNING, …, as agent-client.ts maps it); an agent out of
 * reach is HOST_UNREACHABLE. A refused secret drops the cached credential, as commands do.
 */
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { AGENT_CONSOLE_UPGRADE, agentConsolePath } from '../../contract/console.js';
import { CloudError } from '../../kernel/errors.js';
import { type AgentEndpoint, agentError, unreachable } from './agent-client.js';
import type { AgentCredentials } from './credentials.js';

/** how long the agent may take to connect the VM's VNC socket and answer */
const OPEN_TIMEOUT_MS = 15_000;
const MAX_REFUSAL_BYTES = 64 * 1024;

export function openAgentConsole(
  endpoint: AgentEndpoint,
  vmUuid: string,
  opts: { requestId: string; timeoutMs?: number },
): Promise<Socket> {
  const base = endpoint.baseUrl;
  const timeoutMs = opts.timeoutMs ?? OPEN_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const req = request(new URL(agentConsolePath(vmUuid), base), {
      method: 'GET',
      agent: false,
      headers: {
        authorization: `Bearer ${endpoint.secret}`,
        connection: 'Upgrade',
        upgrade: AGENT_CONSOLE_UPGRADE,
        'x-request-id': opts.requestId,
      },
    });
    const timer = setTimeout(() => {
      done(() =>
        reject(unreachable(base, `did not open the console within ${timeoutMs} ms`, { vmUuid, timeoutMs })),
      );
      req.destroy();
    }, timeoutMs);
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      // bytes of the VNC stream that came with the 101 are put back in front of the rest
      if (head.length > 0) socket.unshift(head);
      if (settled) socket.destroy();
      done(() => resolve(socket));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_REFUSAL_BYTES) chunks.push(c);
      });
      res.on('end', () =>
        done(() =>
          reject(agentError(base, 'console', res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))),
        ),
      );
      res.on('error', (err) =>
        done(() => reject(unreachable(base, `broke off its answer (${err.message})`))),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      done(() =>
        reject(
          unreachable(base, `cannot be reached (${err.code ?? 'error'}: ${err.message})`, {
            vmUuid,
            errno: err.code ?? 'UNKNOWN',
          }),
        ),
      ),
    );
    req.end();
  });
}

/** Opens consoles on kvm hosts with their credentials (the composition root hands it to the API). */
export class KvmConsoles {
  constructor(private readonly credentials: AgentCredentials) {}

  async open(
    host: { uuid: string; managementIp: string },
    vmUuid: string,
    requestId: string,
  ): Promise<Socket> {
    const endpoint = await this.credentials.hostEndpoint(host);
    try {
      return await openAgentConsole(endpoint, vmUuid, { requestId });
    } catch (err) {
      if (err instanceof CloudError && err.code === 'HOST_AGENT_SECRET_REJECTED')
        this.credentials.forget(host.uuid);
      throw err;
    }
  }
}
