/**
 * The management side's HTTP client of nimbus-agent: `POST <base>/v1/commands/<command>` with
 * `Authorization: Bearer <secret>`, a request id header, and a deadline per call. Used by the KVM
 * host driver and the agent backup-storage driver alike (one protocol, src/agent/server.ts).
 *
 * Invariants:
 * - an agent that cannot be reached (refused, reset, no route, no answer before the deadline) is
 *   HOST_UNREACHABLE (reason Unavailable, retryable): exactly what a powered-off simulated host
 *   answers, so the reconciler (Disconnected, VMs Unknown) and the chains behave the same;
 * - an agent's own refusal (its one error shape `{"error":{code,reason,message,details}}`) comes
 *   back as a CloudError with the agent's code and reason, the address added to its details;
 * - the secret is only ever written into the Authorization header: never into an error, a log
 *   line or a detail;
 * - sockets are kept alive between commands (a host gets many small commands); a command that
 *   meets a reset on a reused socket (the agent restarted since) is sent once more on a new one —
 *   every host command is idempotent (contract/agent.ts), so that is safe.
 */
import { randomUUID } from 'node:crypto';
import { Agent, type IncomingMessage, request } from 'node:http';
import { CloudError, REASONS, type Reason } from '../../kernel/errors.js';

export interface AgentEndpoint {
  /** e.g. http://192.0.2.10:7070 (no trailing slash) */
  baseUrl: string;
  secret: string;
}

export interface CallOptions {
  timeoutMs: number;
  /** goes out as x-request-id (the agent logs it with the command) */
  requestId?: string;
}

/** the largest answer read from an agent (vm.list of a full host is far below this) */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

export function unreachable(baseUrl: string, why: string, details: Record<string, unknown> = {}): CloudError {
  return new CloudError('Unavailable', 'HOST_UNREACHABLE', `the agent at ${baseUrl} ${why}`, {
    details: { address: baseUrl, ...details },
    retryable: true,
  });
}

function isReason(value: unknown): value is Reason {
  return typeof value === 'string' && (REASONS as readonly string[]).includes(value);
}

/** The agent's error answer as a CloudError (or AGENT_BAD_ANSWER when it is not its error shape). */
export function agentError(baseUrl: string, command: string, status: number, text: string): CloudError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {}
  const e = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (status === 401) {
    // the secret is wrong or missing on one side: the operator must fix it, retrying will not
    return new CloudError(
      'Unavailable',
      'HOST_AGENT_SECRET_REJECTED',
      `the agent at ${baseUrl} refused our secret (give the host the one in the agent's --secret-file)`,
      { details: { address: baseUrl, command } },
    );
  }
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') {
    return new CloudError(
      'Internal',
      'AGENT_BAD_ANSWER',
      `the agent at ${baseUrl} answered ${command} with HTTP ${status} and no error body`,
      { details: { address: baseUrl, command, status, body: text.slice(0, 200) } },
    );
  }
  const details = e.details !== null && typeof e.details === 'object' ? (e.details as object) : {};
  return new CloudError(isReason(e.reason) ? e.reason : 'Internal', e.code, e.message, {
    details: { ...details, address: baseUrl, command },
    retryable: e.retryable === true || status === 503,
  });
}

export class AgentClient {
  private readonly agent: Agent;

  constructor(opts: { maxSocketsPerHost?: number } = {}) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: opts.maxSocketsPerHost ?? 16,
      keepAliveMsecs: 10_000,
    });
  }

  /** Closes the kept-alive sockets (node shutdown). */
  close(): void {
    this.agent.destroy();
  }

  async command(
    endpoint: AgentEndpoint,
    command: string,
    body: unknown,
    opts: CallOptions,
  ): Promise<unknown> {
    const requestId = opts.requestId ?? randomUUID();
    const text = JSON.stringify(body ?? {});
    try {
      return await this.once(endpoint, command, text, requestId, opts.timeoutMs);
    } catch (err) {
      if (err instanceof StaleSocket) return this.once(endpoint, command, text, requestId, opts.timeoutMs);
      throw err;
    }
  }

  private once(
    endpoint: AgentEndpoint,
    command: string,
    text: string,
    requestId: string,
    timeoutMs: number,
  ): Promise<unknown> {
    const base = endpoint.baseUrl;
    let url: URL;
    try {
      url = new URL(`/v1/commands/${encodeURIComponent(command)}`, base);
    } catch {
      return Promise.reject(
        new CloudError('Invalid', 'AGENT_ADDRESS_INVALID', `${base} is not an agent address`, {
          details: { address: base },
        }),
      );
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          authorization: `Bearer ${endpoint.secret}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'x-request-id': requestId,
        },
      });
      const timer = setTimeout(() => {
        done(() =>
          reject(
            unreachable(base, `did not answer ${command} within ${timeoutMs} ms`, {
              command,
              timeoutMs,
              requestId,
            }),
          ),
        );
        req.destroy();
      }, timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        // a kept-alive socket the agent closed (it restarted): nothing reached it, send again once
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          done(() => reject(new StaleSocket()));
          return;
        }
        const code = err.code ?? 'UNKNOWN';
        done(() =>
          reject(
            UNREACHABLE_CODES.has(code) || !err.code
              ? unreachable(base, `cannot be reached (${code}: ${err.message})`, {
                  command,
                  requestId,
                  errno: code,
                })
              : new CloudError(
                  'Internal',
                  'AGENT_REQUEST_FAILED',
                  `${command} to ${base} failed: ${err.message}`,
                  {
                    details: { address: base, command, requestId, errno: code },
                  },
                ),
          ),
        );
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy();
            done(() =>
              reject(
                new CloudError(
                  'Internal',
                  'AGENT_BAD_ANSWER',
                  `the agent at ${base} answered more than 16 MiB`,
                  {
                    details: { address: base, command },
                  },
                ),
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) =>
          done(() =>
            reject(unreachable(base, `broke off its answer (${err.message})`, { command, requestId })),
          ),
        );
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            done(() => reject(agentError(base, command, status, body)));
            return;
          }
          try {
            const parsed: unknown = body.length === 0 ? {} : JSON.parse(body);
            done(() => resolve(parsed));
          } catch {
            done(() =>
              reject(
                new CloudError(
                  'Internal',
                  'AGENT_BAD_ANSWER',
                  `the agent at ${base} answered ${command} with no JSON`,
                  {
                    details: { address: base, command, body: body.slice(0, 200) },
                  },
                ),
              ),
            );
          }
        });
      });
      req.end(text);
    });
  }
}

/** internal: a reused socket was dead before the request reached the agent */
class StaleSocket extends Error {}
