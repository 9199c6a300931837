/**
 * Cluster-wide fan-out of events by PostgreSQL LISTEN/NOTIFY: what one node publishes (after
 * its commit) reaches every other node's subscribers — SSE streams, the admission cache, job
 * waiters and the engine's queue wake-ups — as if it had been published there.
 *
 * Sending: this node's published events are gathered for a few milliseconds and sent as one
 * `select pg_notify(…)` per batch, outside the transactions that wrote them (NOTIFY inside a
 * writing transaction would serialize every commit of the cluster on PostgreSQL's notify lock).
 * A payload stays under PostgreSQL's 8000-byte limit: events are packed into as many
 * notifications as needed, and one too big alone travels as its id (receivers read it).
 * Receiving: one dedicated connection LISTENs (and sends, so relaying never takes a connection
 * from the node's work); notifications of this node's own events are skipped before parsing; a
 * lost connection is opened again with backoff.
 * Alone, a node relays nothing: it sends only while membership counts other live nodes, or while
 * it has heard from another node lately — a node that joins says hello at once, so the others
 * relay to it before their next heartbeat.
 * What a notification cannot promise — a node dying between its commit and its notify — the
 * consumers cover: SSE clients resume with Last-Event-ID, waiters also poll, caches expire.
 */

import { sql } from 'kysely';
import type pg from 'pg';
import type { Logger } from 'pino';
import { pgTarget } from '../db/multi-host.js';
import type { Db } from '../db/pool.js';
import type { CloudEvent, EventBus } from '../engine/events.js';

export const EVENTS_CHANNEL = 'nimbus_events';
const MAX_PAYLOAD = 7500;
const BATCH_MS = 5;
/** a node heard from this recently counts as a peer even before membership says so */
const PEER_HEARD_MS = 30_000;

interface Payload {
  /** the node that published */
  n: string;
  /** events that fit */
  e?: CloudEvent[];
  /** ids of events too large to carry */
  ids?: string[];
}

/** Splits events into notification payloads, each under MAX_PAYLOAD bytes. */
export function packEvents(nodeId: string, events: CloudEvent[]): string[] {
  const out: string[] = [];
  let current: CloudEvent[] = [];
  let size = 0;
  const flush = () => {
    if (current.length > 0) out.push(JSON.stringify({ n: nodeId, e: current } satisfies Payload));
    current = [];
    size = 0;
  };
  for (const e of events) {
    const one = Buffer.byteLength(JSON.stringify(e)) + 1;
    if (one + 80 > MAX_PAYLOAD) {
      out.push(JSON.stringify({ n: nodeId, ids: [e.id] } satisfies Payload));
      continue;
    }
    if (size + one + 80 > MAX_PAYLOAD) flush();
    current.push(e);
    size += one;
  }
  flush();
  return out;
}

export class EventRelay {
  private outgoing: CloudEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private listener: pg.Client | undefined;
  private stopped = false;
  private listening = false;
  private unsubscribe: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** other live nodes, as the last heartbeat counted them (unknown: assume some) */
  private peers = Number.POSITIVE_INFINITY;
  private heardAt = 0;
  private readonly ownPrefix: string;

  constructor(
    private readonly o: {
      db: Db;
      connectionString: string;
      bus: EventBus;
      nodeId: string;
      applicationName: string;
      log: Logger;
    },
  ) {
    this.ownPrefix = JSON.stringify({ n: o.nodeId }).slice(0, -1);
  }

  /** How many other live nodes there are (membership, on every heartbeat). */
  setPeers(count: number): void {
    this.peers = count;
  }

  private get alone(): boolean {
    return this.peers === 0 && Date.now() - this.heardAt > PEER_HEARD_MS;
  }

  /** Starts listening (resolves once LISTEN is in place) and relaying this node's events. */
  async start(): Promise<void> {
    this.unsubscribe = this.o.bus.subscribe((e, remote) => {
      if (remote || this.stopped || this.alone) return;
      this.outgoing.push(e);
      this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
    });
    await this.listen(0);
    // hello: the other nodes relay to this one from now on, not from their next heartbeat
    this.send([JSON.stringify({ n: this.o.nodeId, e: [] } satisfies Payload)]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.retryTimer);
    if (this.timer) {
      clearTimeout(this.timer);
      this.flush();
    }
    await this.sending.catch(() => {});
    await this.listener?.end().catch(() => {});
  }

  private flush(): void {
    this.timer = undefined;
    const events = this.outgoing.splice(0);
    if (events.length === 0) return;
    this.send(packEvents(this.o.nodeId, events));
  }

  /** Sends on the listening connection when it is up (else through the node's pool). */
  private send(payloads: string[]): void {
    this.sending = this.sending
      .then(async () => {
        const listener = this.listener;
        if (listener && this.listening) {
          await listener.query(`select pg_notify('${EVENTS_CHANNEL}', p) from unnest($1::text[]) p`, [
            payloads,
          ]);
        } else {
          await sql`select pg_notify(${EVENTS_CHANNEL}, p) from unnest(${payloads}::text[]) p`.execute(
            this.o.db,
          );
        }
      })
      .catch((err) =>
        this.o.log.warn({ err, payloads: payloads.length }, 'relaying events to the other nodes failed'),
      );
  }

  private async listen(attempt: number): Promise<void> {
    if (this.stopped) return;
    // a multi-host URL: LISTEN on the primary, where the other nodes NOTIFY
    const target = pgTarget(this.o.connectionString);
    const client = new target.Client({
      connectionString: target.connectionString,
      application_name: this.o.applicationName,
    });
    const retry = (err: unknown) => {
      if (this.stopped || this.listener !== client) return;
      // a connection that was listening starts the backoff afresh (a failover: back within seconds)
      const next = this.listening ? 0 : attempt + 1;
      this.listener = undefined;
      this.listening = false;
      client.end().catch(() => {});
      const pause = Math.min(5000, 200 * 2 ** Math.min(next, 5));
      this.o.log.warn({ err, retryInMs: pause }, 'the event relay lost its database connection');
      this.retryTimer = setTimeout(() => void this.listen(next).catch(() => {}), pause);
      this.retryTimer.unref();
    };
    this.listener = client;
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === EVENTS_CHANNEL && msg.payload) void this.receive(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${EVENTS_CHANNEL}`);
      if (this.listener === client) this.listening = true;
    } catch (err) {
      retry(err);
    }
  }

  private async receive(raw: string): Promise<void> {
    if (raw.startsWith(this.ownPrefix)) return; // this node's own, published here already
    this.heardAt = Date.now();
    let payload: Payload;
    try {
      payload = JSON.parse(raw) as Payload;
    } catch {
      return;
    }
    if (payload.n === this.o.nodeId) return;
    try {
      const events = payload.e?.map((e) => ({ ...e, at: new Date(e.at) })) ?? [];
      if (payload.ids && payload.ids.length > 0) {
        const rows = await this.o.db
          .selectFrom('events')
          .selectAll()
          .where('id', 'in', payload.ids)
          .execute();
        events.push(...rows.map((r) => ({ ...r, id: String(r.id) }) as CloudEvent));
      }
      this.o.bus.publishRemote(events);
    } catch (err) {
      this.o.log.warn({ err }, 'reading relayed events failed');
    }
  }
}
