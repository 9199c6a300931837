/**
 * Events: every state change of every resource and job is written to the `events` table in the
 * same transaction as the change, and published to in-process subscribers only after that
 * transaction commits (so a rolled-back change is never streamed). In a cluster the relay
 * (cluster/relay.ts) forwards what this node publishes to the others, which publish it as remote.
 */
import { EventEmitter } from 'node:events';
import type { Db } from '../db/pool.js';
import type { Tx } from '../db/transaction.js';
import { newId } from '../kernel/ids.js';

export interface EventInput {
  type: string;
  resourceKind: string;
  resourceUuid: string;
  accountUuid: string;
  jobUuid?: string | null;
  data?: Record<string, unknown>;
}

export interface CloudEvent {
  id: string;
  uuid: string;
  at: Date;
  type: string;
  resourceKind: string;
  resourceUuid: string;
  accountUuid: string;
  jobUuid: string | null;
  data: Record<string, unknown>;
}

/** Collects events during a transaction; `flush` publishes them after commit. */
export class EventBatch {
  private readonly pending: EventInput[] = [];
  add(e: EventInput): void {
    this.pending.push(e);
  }
  get size(): number {
    return this.pending.length;
  }
  drain(): EventInput[] {
    return this.pending.splice(0);
  }
}

/** The `events` rows for `events` (for an insert, possibly inside a larger statement). */
export function eventValues(events: EventInput[]) {
  return events.map((e) => ({
    uuid: newId(),
    type: e.type,
    resourceKind: e.resourceKind,
    resourceUuid: e.resourceUuid,
    accountUuid: e.accountUuid,
    jobUuid: e.jobUuid ?? null,
    data: JSON.stringify(e.data ?? {}),
  }));
}

/** Stored events from the inserted values and what the insert returned (id, at), for publishing. */
export function storedEvents(
  values: ReturnType<typeof eventValues>,
  returned: Array<{ uuid: string; id: string | number; at: Date | string }>,
  inputs: EventInput[],
): CloudEvent[] {
  const byUuid = new Map(returned.map((r) => [r.uuid, r]));
  return values.map((v, i) => {
    const r = byUuid.get(v.uuid);
    return {
      id: String(r?.id ?? ''),
      uuid: v.uuid,
      at: r?.at instanceof Date ? r.at : new Date(r?.at ?? Date.now()),
      type: v.type,
      resourceKind: v.resourceKind,
      resourceUuid: v.resourceUuid,
      accountUuid: v.accountUuid,
      jobUuid: v.jobUuid,
      data: inputs[i]?.data ?? {},
    };
  });
}

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /** Inserts the events inside `tx`; returns the stored rows for publishing after commit. */
  async write(tx: Tx | Db, events: EventInput[]): Promise<CloudEvent[]> {
    if (events.length === 0) return [];
    const rows = await tx.insertInto('events').values(eventValues(events)).returningAll().execute();
    return rows.map((r) => ({ ...r, id: String(r.id) }) as CloudEvent);
  }

  /** Streams committed events to this node's subscribers (and, through the relay, to the other nodes). */
  publish(events: CloudEvent[]): void {
    for (const e of events) this.emitter.emit('event', e, false);
  }

  /** Streams events another node committed and published (cluster/relay.ts): never relayed again. */
  publishRemote(events: CloudEvent[]): void {
    for (const e of events) this.emitter.emit('event', e, true);
  }

  /** Runs `fn` in a transaction with an event batch; events are stored with it and streamed after commit. */
  async inTransaction<T>(db: Db, fn: (tx: Tx, events: EventBatch) => Promise<T>): Promise<T> {
    const batch = new EventBatch();
    let stored: CloudEvent[] = [];
    const result = await db.transaction().execute(async (tx) => {
      const value = await fn(tx, batch);
      stored = await this.write(tx, batch.drain());
      return value;
    });
    this.publish(stored);
    return result;
  }

  /** `remote`: the event was published by another management node. */
  subscribe(listener: (e: CloudEvent, remote: boolean) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
