/**
 * Load shedding: the one place that bounds the HTTP work a node has in flight.
 *
 * Every request is put in a class by method and path the moment it arrives (an onRequest hook,
 * before authentication and before its body is read):
 * - `exempt`: health, readiness, metrics, event streams and VM consoles. Never refused: an
 *   operator or a load balancer must see the node under any load, and a stream (or a console)
 *   stays open for as long as its client.
 * - `wait`: long-polls (`?wait=true`). Cheap while they wait, but they hold a slot up to 60 s, so
 *   they have their own budget and never crowd out short reads.
 * - `read`: GET/HEAD/OPTIONS.
 * - `write`: everything else (creates, updates, deletes, actions, login).
 * A class beyond its limit is answered at once with 503 OVERLOADED (reason Unavailable,
 * retryable) and `Retry-After`, in the one error shape, having done nothing: a refused create
 * created nothing.
 *
 * Invariant: each admitted request releases its slot exactly once, when its response finishes or
 * its connection closes first (client gone, socket error), so the counters never leak.
 * Why these bound memory and latency: each admitted request holds at most a statement or two
 * waiting for the database pool, and jobs are capped separately (settings.maxRunningJobs), so
 * the pool's wait queue is bounded by the sum of the limits.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CloudError } from '../kernel/errors.js';

export const LOAD_CLASSES = ['exempt', 'wait', 'read', 'write'] as const;
export type LoadClass = (typeof LOAD_CLASSES)[number];

export interface LoadLimits {
  /** reads in flight at once; more are refused */
  maxInFlightReads: number;
  /** mutations in flight at once */
  maxInFlightWrites: number;
  /** `?wait=true` long-polls in flight at once */
  maxInFlightWaits: number;
  /** the Retry-After a refused request is given, seconds */
  overloadRetryAfterSeconds: number;
}

/** Paths never refused (exact match, without the query). */
const EXEMPT = new Set(['/v1/health', '/v1/ready', '/metrics', '/v1/events/stream', '/v1/console']);

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const WAIT = /[?&]wait=(true|1)(&|$)/;

export function classify(method: string, url: string): LoadClass {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (EXEMPT.has(path)) return 'exempt';
  if (q >= 0 && WAIT.test(url.slice(q))) return 'wait';
  return READ_METHODS.has(method) ? 'read' : 'write';
}

/** What the hook counts, for /metrics and for tests. */
export class LoadState {
  readonly inFlight: Record<LoadClass, number> = { exempt: 0, wait: 0, read: 0, write: 0 };
  readonly refused: Record<LoadClass, number> = { exempt: 0, wait: 0, read: 0, write: 0 };
}

function limitOf(limits: LoadLimits, cls: LoadClass): number {
  switch (cls) {
    case 'exempt':
      return Number.POSITIVE_INFINITY;
    case 'wait':
      return limits.maxInFlightWaits;
    case 'read':
      return limits.maxInFlightReads;
    case 'write':
      return limits.maxInFlightWrites;
  }
}

const RELEASE = Symbol('nimbus.loadRelease');
type Tracked = FastifyRequest & { [RELEASE]?: () => void };

/** Registers the shedding hook; register it before any hook that reads the database (auth). */
export function registerLoadShedding(
  app: FastifyInstance,
  limits: LoadLimits,
  state: LoadState = new LoadState(),
): LoadState {
  const retryAfter = String(Math.max(1, Math.ceil(limits.overloadRetryAfterSeconds)));
  // one body per class, made once: a refusal must cost next to nothing (no Error, no stack trace)
  const refusal = new Map(
    LOAD_CLASSES.map((cls) => {
      const limit = limitOf(limits, cls);
      const err = new CloudError(
        'Unavailable',
        'OVERLOADED',
        `the node is at its limit of ${limit} ${cls === 'write' ? 'mutation' : cls} requests in flight; retry after ${retryAfter} s`,
        { retryable: true, details: { class: cls, limit, retryAfterSeconds: Number(retryAfter) } },
      );
      return [cls, { status: err.status, body: JSON.stringify({ error: err.toBody() }) }];
    }),
  );
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const cls = classify(request.method, request.url);
    if (state.inFlight[cls] >= limitOf(limits, cls)) {
      state.refused[cls]++;
      const r = refusal.get(cls) as { status: number; body: string };
      // answered here, before the body is read: the request did nothing
      return reply
        .code(r.status)
        .header('retry-after', retryAfter)
        .header('content-type', 'application/json; charset=utf-8')
        .send(r.body);
    }
    state.inFlight[cls]++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      state.inFlight[cls]--;
    };
    (request as Tracked)[RELEASE] = release;
    // 'close' comes after 'finish' and also when the client goes away first: exactly-once release
    reply.raw.once('close', release);
  });
  // the usual end: free the slot as soon as the response is written
  app.addHook('onResponse', async (request) => {
    (request as Tracked)[RELEASE]?.();
  });
  app.addHook('onRequestAbort', async (request) => {
    (request as Tracked)[RELEASE]?.();
  });
  return state;
}
