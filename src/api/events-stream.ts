/**
 * `GET /v1/events/stream`: Server-Sent Events of every event the caller may see, as they are
 * committed. `?after=<id>` (or the Last-Event-ID header) first replays stored events after that
 * id, so a client that reconnects misses nothing. Optional `type` and `resourceUuid` filters.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Db } from '../db/pool.js';
import type { CloudEvent, EventBus } from '../engine/events.js';
import { callerOf } from './auth.js';

const StreamQuery = Type.Object(
  {
    // 18 digits always fit the bigint id column; more would be a database error, not a 400
    after: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,18}$', description: 'replay events after this id' }),
    ),
    type: Type.Optional(Type.String()),
    resourceUuid: Type.Optional(Type.String({ format: 'uuid' })),
  },
  { additionalProperties: false },
);

export function registerEventStream(app: FastifyInstance, db: Db, bus: EventBus): void {
  app.get(
    '/v1/events/stream',
    {
      schema: {
        tags: ['events'],
        operationId: 'streamEvents',
        summary: 'stream events (Server-Sent Events)',
        querystring: StreamQuery,
        response: {
          200: {
            description: 'text/event-stream: one `event:` per event (id = its seq; Last-Event-ID resumes)',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const q = request.query as { after?: string; type?: string; resourceUuid?: string };
      const after = q.after ?? (request.headers['last-event-id'] as string | undefined);
      const visible = (e: Pick<CloudEvent, 'accountUuid' | 'type' | 'resourceUuid'>) =>
        (caller.isAdmin || e.accountUuid === caller.accountUuid) &&
        (!q.type || e.type === q.type || e.type.startsWith(`${q.type}.`)) &&
        (!q.resourceUuid || e.resourceUuid === q.resourceUuid);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-request-id': request.id,
      });
      res.write(': connected\n\n'); // sends the headers now: clients wait for them before anything else
      const send = (e: CloudEvent) =>
        res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...e, id: String(e.id) })}\n\n`);

      // subscribe before replaying so nothing committed in between is lost; dedupe by id
      let lastSent = after && /^[0-9]{1,18}$/.test(after) ? BigInt(after) : -1n;
      const queued: CloudEvent[] = [];
      let replaying = true;
      const unsubscribe = bus.subscribe((e) => {
        if (!visible(e)) return;
        if (replaying) queued.push(e);
        else if (BigInt(e.id) > lastSent) {
          lastSent = BigInt(e.id);
          send(e);
        }
      });
      if (lastSent >= 0n) {
        let query = db
          .selectFrom('events')
          .selectAll()
          .where('id', '>', String(lastSent))
          .orderBy('id')
          .limit(1000);
        if (!caller.isAdmin) query = query.where('accountUuid', '=', caller.accountUuid);
        for (const row of await query.execute()) {
          const e = { ...row, id: String(row.id) } as CloudEvent;
          if (!visible(e)) continue;
          lastSent = BigInt(e.id);
          send(e);
        }
      }
      replaying = false;
      for (const e of queued)
        if (BigInt(e.id) > lastSent) {
          lastSent = BigInt(e.id);
          send(e);
        }
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      request.raw.on('close', () => {
        clearInterval(keepAlive);
        unsubscribe();
      });
    },
  );
}
