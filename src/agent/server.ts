/**
 * The agent's HTTP face: `POST /v1/commands/<command>` with the request as a JSON object, answered
 * 200 with the response as JSON, or with the one error shape `{"error":{code,reason,message,details}}`.
 * Invariants: nothing answers without `Authorization: Bearer <secret>` (checked in constant time,
 * before the path is even looked at: an unauthenticated caller learns nothing, not even which
 * routes exist); a handler's CloudError keeps its status; any other failure is AGENT_INTERNAL
 * with its message and never a stack. An HTTP upgrade (the VM console tunnel) is authenticated the
 * same way before its handler sees it, and refused with the same error shape.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { CloudError, STATUS_BY_REASON, toErrorBody } from '../kernel/errors.js';
import type { AgentHandlers, AgentPeerHandlers, BackupStorageCommandHandlers } from './handlers.js';

export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const COMMAND_PATH = /^\/v1\/commands\/([a-z0-9.-]+)$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** An upgrade route (the console tunnel), after authentication: true = it took the socket. */
export type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  requestId: string,
) => boolean;

export interface AgentServerOptions {
  secret: string;
  handlers: AgentHandlers & AgentPeerHandlers & BackupStorageCommandHandlers;
  /**
   * other routes (the backup storage's /v1/images/…), tried after authentication and before the
   * commands: true = the route took the request
   */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** HTTP upgrades (GET /v1/vms/<uuid>/console), tried after authentication */
  upgrade?: UpgradeHandler;
  /** an authenticated command arrived (self-fence.ts counts it as contact) */
  onCommand?: (command: string) => void;
  log: Logger;
}

type AnyHandler = (request: unknown) => Promise<unknown>;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function bearerMatches(header: string | undefined, secret: string): boolean {
  const given = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  return timingSafeEqual(digest(given), digest(secret)) && given.length > 0;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function errorAnswer(err: unknown): { status: number; body: unknown } {
  if (err instanceof CloudError) return { status: err.status, body: { error: err.toBody() } };
  const body = toErrorBody(err);
  return { status: STATUS_BY_REASON.Internal, body: { error: { ...body, code: 'AGENT_INTERNAL' } } };
}

function sendError(res: ServerResponse, err: unknown): void {
  const { status, body } = errorAnswer(err);
  send(res, status, body);
}

/** Answers an upgrade request with the one error shape as a plain HTTP response, and closes. */
export function refuseUpgrade(socket: Duplex, err: unknown, requestId: string): void {
  const { status, body } = errorAnswer(err);
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
  );
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(
          new CloudError('Invalid', 'AGENT_BODY_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`, {
            details: { limit: MAX_BODY_BYTES },
          }),
        );
        // stop buffering but keep reading, so the refusal still reaches the client
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseRequest(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new CloudError(
      'Invalid',
      'AGENT_BODY_MALFORMED',
      `body is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CloudError(
      'Invalid',
      'AGENT_BODY_MALFORMED',
      'body must be a JSON object (the command request)',
      {
        details: { got: value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value },
      },
    );
  }
  return value as Record<string, unknown>;
}

export function createAgentServer(opts: AgentServerOptions): Server {
  const handlers = opts.handlers as Record<string, AnyHandler | undefined>;
  const server = createServer((req, res) => {
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && header.length > 0 ? header.slice(0, 128) : randomUUID();
    res.setHeader('x-request-id', requestId);
    if (!bearerMatches(req.headers.authorization, opts.secret)) {
      opts.log.warn({ requestId, url: req.url }, 'unauthenticated request refused');
      sendError(
        res,
        new CloudError('Unauthenticated', 'AGENT_UNAUTHENTICATED', 'missing or wrong bearer secret'),
      );
      req.resume();
      return;
    }
    if (opts.routes?.(req, res)) {
      opts.log.info({ requestId, method: req.method, url: req.url }, 'route');
      return;
    }
    const match = COMMAND_PATH.exec(req.url ?? '');
    const command = match?.[1];
    const handler = command === undefined ? undefined : handlers[command];
    if (req.method !== 'POST' || command === undefined || handler === undefined) {
      const err =
        command === undefined
          ? new CloudError('NotFound', 'AGENT_ROUTE_UNKNOWN', `no route ${req.method} ${req.url}`)
          : req.method !== 'POST'
            ? new CloudError(
                'Invalid',
                'AGENT_METHOD_NOT_ALLOWED',
                `commands are sent with POST, not ${req.method}`,
              )
            : new CloudError('NotFound', 'AGENT_COMMAND_UNKNOWN', `this agent does not handle ${command}`, {
                details: { command },
              });
      sendError(res, err);
      req.resume();
      return;
    }
    opts.onCommand?.(command);
    const log = opts.log.child({ command, requestId });
    const started = Date.now();
    readBody(req)
      .then((raw) => handler(parseRequest(raw)))
      .then((response) => {
        log.info({ ms: Date.now() - started }, 'command done');
        send(res, 200, response ?? {});
      })
      .catch((err: unknown) => {
        const body = toErrorBody(err);
        log.warn({ ms: Date.now() - started, code: body.code, err: body.message }, 'command failed');
        sendError(res, err);
      });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // node gives an upgraded socket no error listener: a reset must not end the agent
    socket.on('error', () => socket.destroy());
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    if (!bearerMatches(req.headers.authorization, opts.secret)) {
      opts.log.warn({ requestId, url: req.url }, 'unauthenticated upgrade refused');
      refuseUpgrade(
        socket,
        new CloudError('Unauthenticated', 'AGENT_UNAUTHENTICATED', 'missing or wrong bearer secret'),
        requestId,
      );
      return;
    }
    if (opts.upgrade?.(req, socket, head, requestId)) return;
    refuseUpgrade(
      socket,
      new CloudError('NotFound', 'AGENT_ROUTE_UNKNOWN', `no upgrade route ${req.method} ${req.url}`),
      requestId,
    );
  });
  return server;
}
