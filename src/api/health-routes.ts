/**
 * Liveness and readiness, for load balancers and scripts (docs/api.md "Health and readiness"):
 * - `GET /v1/health` (what a load balancer checks, docs/cluster.md): the process answers and its
 *   database answers a trivial query within HEALTH_DB_TIMEOUT_MS, and the node is not draining;
 *   503 otherwise (a draining node takes no new work: HAProxy sends it elsewhere). A starting
 *   node is healthy (its start is short; /v1/ready says when it has recovered).
 * - `GET /v1/ready` (readiness: send it work): 200 only when the node is migrated, its first
 *   recovery pass is done, it has warmed up (every database connection of its pool open, the
 *   scheduler's candidate hosts loaded), the demo environment exists when one was asked for, and it is not
 *   draining; otherwise 503 naming every reason. A stopping node turns not-ready before it
 *   does anything else.
 * Both are unauthenticated and touch nothing but one `select 1`. While the node drains, a
 * mutating request (anything but GET/HEAD/OPTIONS) is refused with 503 NODE_DRAINING and
 * Retry-After: the client sends it to another node (or again once this one restarted).
 */
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../db/pool.js';

export const HEALTH_DB_TIMEOUT_MS = 2000;

/** health answers are not errors: their own small body, every field sent as it is */
const HealthBody = (description: string) =>
  Type.Object(
    { status: Type.String(), version: Type.String(), node: Type.String() },
    { additionalProperties: true, description },
  );

/** Why a node is not ready, in the words /v1/ready answers with. */
export type NotReadyReason = 'migrating' | 'recovering' | 'warming' | 'creating-demo' | 'draining';

/** The node's readiness: conditions still pending; ready when none is. */
export class Readiness {
  private readonly pending = new Set<NotReadyReason>();

  constructor(initial: NotReadyReason[] = []) {
    for (const r of initial) this.pending.add(r);
  }

  /** a condition is met (draining is never lifted: a drained node stops) */
  done(reason: Exclude<NotReadyReason, 'draining'>): void {
    this.pending.delete(reason);
  }

  wait(reason: NotReadyReason): void {
    this.pending.add(reason);
  }

  get reasons(): NotReadyReason[] {
    return [...this.pending];
  }

  get ready(): boolean {
    return this.pending.size === 0;
  }

  get draining(): boolean {
    return this.pending.has('draining');
  }
}

async function databaseAnswers(ping: () => Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${HEALTH_DB_TIMEOUT_MS} ms`)),
          HEALTH_DB_TIMEOUT_MS,
        );
      }),
    ]);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(
  app: FastifyInstance,
  d: {
    db: Db;
    readiness: Readiness;
    version: string;
    nodeId: string;
    /** asks the database; default `select 1` on the main pool (node.ts passes its own connection) */
    ping?: () => Promise<void>;
  },
): void {
  const ping = d.ping ?? (() => sql`select 1`.execute(d.db));
  app.addHook('onRequest', async (request, reply) => {
    if (!d.readiness.draining || ['GET', 'HEAD', 'OPTIONS'].includes(request.method)) return;
    return reply
      .code(503)
      .header('retry-after', '5')
      .send({
        error: {
          code: 'NODE_DRAINING',
          reason: 'Unavailable',
          message: 'this management node is stopping: send the request to another node or retry',
          retryable: true,
        },
      });
  });
  app.get(
    '/v1/health',
    {
      schema: {
        tags: ['health'],
        operationId: 'getHealth',
        summary: 'liveness: the process and its database answer',
        response: {
          200: HealthBody('the node and its database answer: {status: ok, database: ok, version, node}'),
          503: HealthBody(
            'the database does not answer (a load balancer takes the node out): {status: degraded, database, version, node}',
          ),
        },
      },
    },
    async (_request, reply) => {
      const problem = await databaseAnswers(ping);
      const body = { version: d.version, node: d.nodeId };
      if (problem === undefined && d.readiness.draining)
        return reply.code(503).send({ status: 'draining', database: 'ok', ...body });
      if (problem === undefined) return { status: 'ok', database: 'ok', ...body };
      return reply.code(503).send({ status: 'degraded', database: `unreachable: ${problem}`, ...body });
    },
  );
  app.get(
    '/v1/ready',
    {
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'readiness: the node accepts work (503 with the reasons when not)',
        response: {
          200: HealthBody('ready: {status: ready, ready: true, reasons: [], version, node}'),
          503: HealthBody(
            'not ready: {status: not-ready, ready: false, reasons (migrating, recovering, warming, creating-demo, draining), version, node}',
          ),
        },
      },
    },
    async (_request, reply) => {
      const body = { version: d.version, node: d.nodeId };
      const reasons = d.readiness.reasons;
      if (reasons.length > 0)
        return reply.code(503).send({ status: 'not-ready', ready: false, reasons, ...body });
      return { status: 'ready', ready: true, reasons: [], ...body };
    },
  );
}
