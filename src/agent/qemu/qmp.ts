/**
 * A small QMP client (QEMU Machine Protocol) over a unix socket: greeting, qmp_capabilities,
 * `execute` with ids matched to answers, asynchronous events to listeners, timeouts, close.
 * Invariants: every pending command settles exactly once (answer, error, timeout, or the socket
 * closing); one JSON object per line in both directions.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { CloudError } from '../../kernel/errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  command: string;
}

export class QmpError extends CloudError {
  constructor(command: string, qmpClass: string, desc: string) {
    super('Conflict', 'AGENT_QMP_ERROR', `QMP ${command}: ${desc}`, {
      details: { command, class: qmpClass },
    });
  }
}

export class Qmp extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeted: (() => void) | undefined;
  closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly timeoutMs: number,
  ) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClose());
    socket.on('error', () => this.onClose());
  }

  /** Connect, wait for the greeting and leave capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }).catch((err: Error) => {
      socket.destroy();
      throw new CloudError('Unavailable', 'AGENT_QMP_UNREACHABLE', `QMP socket ${path}: ${err.message}`);
    });
    const qmp = new Qmp(socket, timeoutMs);
    const greeting = new Promise<void>((resolve) => {
      qmp.greeted = resolve;
    });
    const timer = setTimeout(() => qmp.close(), timeoutMs);
    await Promise.race([greeting, new Promise<void>((resolve) => qmp.once('close', resolve))]);
    clearTimeout(timer);
    if (qmp.closed)
      throw new CloudError('Unavailable', 'AGENT_QMP_UNREACHABLE', `no QMP greeting on ${path}`);
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    if (this.closed) {
      return Promise.reject(
        new CloudError('Unavailable', 'AGENT_QMP_CLOSED', `QMP closed before ${command}`),
      );
    }
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new CloudError('Timeout', 'AGENT_QMP_TIMEOUT', `QMP ${command} gave no answer in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, command });
      const message: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) message.arguments = args;
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Resolves with the first event named `name` that `match` accepts, or rejects at the timeout. */
  waitEvent(
    name: string,
    timeoutMs: number,
    match: (e: QmpEvent) => boolean = () => true,
  ): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name || !match(e)) return;
        done();
        resolve(e);
      };
      const onClose = () => {
        done();
        reject(new CloudError('Unavailable', 'AGENT_QMP_CLOSED', `QMP closed while waiting for ${name}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new CloudError('Timeout', 'AGENT_QMP_TIMEOUT', `no ${name} event in ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  close(): void {
    this.socket.destroy();
    this.onClose();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line.length > 0) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QEMU only writes JSON; a torn line cannot be answered anyway
    }
    if ('QMP' in msg) {
      this.greeted?.();
      this.greeted = undefined;
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    const error = msg.error as { class?: string; desc?: string } | undefined;
    if (error !== undefined)
      pending.reject(new QmpError(pending.command, error.class ?? '', error.desc ?? ''));
    else pending.resolve(msg.return);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new CloudError('Unavailable', 'AGENT_QMP_CLOSED', `QMP closed before ${p.command} answered`));
    }
    this.emit('close');
  }
}
