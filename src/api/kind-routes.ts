/**
 * The same routes for every kind:
 *   GET    /v1/<kind>                        list/query (engine/query)
 *   GET    /v1/<kind>/{uuid}                 one resource; another account's is a 404
 *   POST   /v1/<kind>                        create            → 202 + job
 *   PATCH  /v1/<kind>/{uuid}                 update            → 202 + job
 *   DELETE /v1/<kind>/{uuid}                 delete            → 202 + job
 *   POST   /v1/<kind>/{uuid}/actions/<name>  action            → 202 + job
 *   POST   /v1/<kind>/{uuid}/tags            set a tag         → 202 + job
 *   DELETE /v1/<kind>/{uuid}/tags/{key}      remove a tag      → 202 + job
 * `?wait=true` answers with the finished job (200), or the running one (202) after 60 s.
 *
 * Authorisation comes before validation: on a mutating route, a non-admin caller is refused an
 * admin-only kind (403), and a resource it may not see is a 404, before its body or query is
 * looked at, so a 400 never tells a tenant anything about another account's resource.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Job, Page, TagBody } from '../contract/common.js';
import { noun, withArticle } from '../contract/wording.js';
import type { Engine } from '../engine/engine.js';
import { secretsOf } from '../engine/job-secrets.js';
import { isFinished, type JobRow, jobToApi } from '../engine/jobs.js';
import { getVisibleRow, parseListQuery, runListQuery } from '../engine/query/index.js';
import type { KindRegistry } from '../engine/query/schema.js';
import { forbidden, notFound } from '../kernel/errors.js';
import { isUuid } from '../kernel/ids.js';
import { WAIT_LIMIT_MS } from '../resources/operations/job/service.js';
import type { TagService } from '../resources/operations/tag/service.js';
import type { FlowDeps, KindService } from '../resources/service.js';
import { callerOf } from './auth.js';

const UuidParams = Type.Object({ uuid: Type.String({ format: 'uuid' }) });
const ListQuery = Type.Object({}, { additionalProperties: true });

export async function replyWithJob(
  engine: Engine<FlowDeps>,
  request: FastifyRequest,
  reply: FastifyReply,
  job: JobRow,
): Promise<unknown> {
  const wait = (request.query as Record<string, unknown> | undefined)?.wait;
  let current: JobRow | undefined = job;
  // a job finished at its admission (a pool hand-out) is answered from its row: no read back
  if ((wait === 'true' || wait === '1') && !isFinished(job.state))
    current = (await engine.waitFor(job.uuid, WAIT_LIMIT_MS)) ?? job;
  const finished =
    current.state === 'Succeeded' || current.state === 'Failed' || current.state === 'Cancelled';
  // values this one answer shows (job-secrets.ts): from the admitted row, never from the database
  const secrets = secretsOf(job);
  // 200 once the job is finished (waited for, or finished at once like a cancel), 202 while it runs
  return reply
    .code(finished ? 200 : 202)
    .header('Location', `/v1/jobs/${job.uuid}`)
    .send(secrets ? { ...jobToApi(current), secrets } : jobToApi(current));
}

export function registerKindRoutes(
  app: FastifyInstance,
  svc: KindService,
  deps: {
    engine: Engine<FlowDeps>;
    registry: KindRegistry;
    db: import('../db/pool.js').Db;
    tags: TagService;
  },
): void {
  const { contract, schema } = svc;
  const base = `/v1/${contract.kind}`;
  const tags = [contract.kind];
  const present = svc.present ?? ((row: Record<string, unknown>) => row);
  const adminGuard = (request: FastifyRequest) => {
    if (contract.adminOnly && !callerOf(request).isAdmin)
      throw forbidden(`only the admin account may change ${contract.kind}`);
  };
  // runs before schema validation (preValidation): see the module comment
  const authorise =
    (opts: { admin: boolean }) =>
    async (request: FastifyRequest): Promise<void> => {
      if (opts.admin) adminGuard(request);
      const caller = callerOf(request);
      const uuid = (request.params as { uuid?: unknown } | undefined)?.uuid;
      // the admin sees every row; a malformed uuid names no resource and is refused by validation
      if (caller.isAdmin || typeof uuid !== 'string' || !isUuid(uuid)) return;
      if (!(await getVisibleRow(deps.db, schema, uuid, caller))) throw notFound(contract.singular, uuid);
    };
  const config = { kind: contract.singular };

  app.get(
    base,
    {
      config,
      schema: {
        tags,
        summary: `list ${noun(contract.kind)}`,
        description: `${contract.summary}. Query: q=<field><op><value> (repeatable; ops = != > >= < <= ~= !~= ?= !?= =null !=null; nested fields like cluster.zone.name; tag=key[=value]), sort=[-]field, limit (≤1000), offset, count=true, fields=a,b`,
        querystring: ListQuery,
        response: { 200: Page(Type.Partial(contract.resource)) },
      },
    },
    async (request) => {
      const scope = callerOf(request);
      const query = parseListQuery(
        request.query as Record<string, string | string[] | undefined>,
        schema,
        deps.registry,
        scope,
      );
      const page = await runListQuery(deps.db, deps.registry, schema, query, scope);
      // present may read more (a NIC's security groups): awaited for the whole page at once
      return { ...page, items: await Promise.all(page.items.map((r) => (query.fields ? r : present(r)))) };
    },
  );

  app.get(
    `${base}/:uuid`,
    {
      config,
      schema: {
        tags,
        summary: `get ${withArticle(contract.singular)}`,
        params: UuidParams,
        response: { 200: contract.resource },
      },
    },
    async (request) => {
      const { uuid } = request.params as { uuid: string };
      if (svc.get) return svc.get(callerOf(request), uuid, request.query as Record<string, unknown>);
      const row = await getVisibleRow(deps.db, schema, uuid, callerOf(request));
      if (!row) throw notFound(contract.singular, uuid);
      return present(row);
    },
  );

  const jobResponse = { 200: Job, 202: Job };
  if (svc.create && contract.create) {
    const create = svc.create.bind(svc);
    app.post(
      base,
      {
        config,
        preValidation: async (request) => adminGuard(request),
        schema: {
          tags,
          summary: `create ${withArticle(contract.singular)}`,
          body: contract.create,
          response: jobResponse,
        },
      },
      async (request, reply) => {
        adminGuard(request);
        const job = await create(callerOf(request), request.body as Record<string, unknown>);
        return replyWithJob(deps.engine, request, reply, job);
      },
    );
  }
  if (svc.update && contract.update) {
    const update = svc.update;
    app.patch(
      `${base}/:uuid`,
      {
        config,
        preValidation: authorise({ admin: true }),
        schema: {
          tags,
          summary: `update ${withArticle(contract.singular)}`,
          params: UuidParams,
          body: contract.update,
          response: jobResponse,
        },
      },
      async (request, reply) => {
        adminGuard(request);
        const { uuid } = request.params as { uuid: string };
        return replyWithJob(
          deps.engine,
          request,
          reply,
          await update(callerOf(request), uuid, request.body as Record<string, unknown>),
        );
      },
    );
  }
  if (svc.remove && contract.deletable) {
    const remove = svc.remove.bind(svc);
    app.delete(
      `${base}/:uuid`,
      {
        config,
        preValidation: authorise({ admin: true }),
        schema: {
          tags,
          summary: `delete ${withArticle(contract.singular)}`,
          params: UuidParams,
          response: jobResponse,
        },
      },
      async (request, reply) => {
        adminGuard(request);
        const { uuid } = request.params as { uuid: string };
        return replyWithJob(deps.engine, request, reply, await remove(callerOf(request), uuid));
      },
    );
  }
  for (const [name, action] of Object.entries(contract.actions ?? {})) {
    const op = svc.actions?.[name];
    if (!op) continue;
    app.post(
      `${base}/:uuid/actions/${name}`,
      {
        config,
        // an action marked `tenant` (a pool's allocate) is open to every account that sees the resource
        preValidation: authorise({ admin: contract.kind !== 'jobs' && action.tenant !== true }),
        schema: {
          tags,
          summary: action.summary,
          params: UuidParams,
          body: action.body,
          response: jobResponse,
        },
      },
      async (request, reply) => {
        if (contract.kind !== 'jobs' && action.tenant !== true) adminGuard(request);
        const { uuid } = request.params as { uuid: string };
        return replyWithJob(
          deps.engine,
          request,
          reply,
          await op(callerOf(request), uuid, (request.body ?? {}) as Record<string, unknown>),
        );
      },
    );
  }
  if (contract.taggable) {
    app.post(
      `${base}/:uuid/tags`,
      {
        config,
        preValidation: authorise({ admin: false }),
        schema: {
          tags,
          summary: `set a tag on ${withArticle(contract.singular)}`,
          params: UuidParams,
          body: TagBody,
          response: jobResponse,
        },
      },
      async (request, reply) => {
        const { uuid } = request.params as { uuid: string };
        const job = await deps.tags.setTag(
          callerOf(request),
          { schema, singular: contract.singular },
          uuid,
          request.body as TagBody,
        );
        return replyWithJob(deps.engine, request, reply, job);
      },
    );
    app.delete(
      `${base}/:uuid/tags/:key`,
      {
        config,
        preValidation: authorise({ admin: false }),
        schema: {
          tags,
          summary: `remove a tag from ${withArticle(contract.singular)}`,
          params: Type.Object({ uuid: Type.String({ format: 'uuid' }), key: Type.String({ minLength: 1 }) }),
          response: jobResponse,
        },
      },
      async (request, reply) => {
        const { uuid, key } = request.params as { uuid: string; key: string };
        return replyWithJob(
          deps.engine,
          request,
          reply,
          await deps.tags.removeTag(callerOf(request), { schema, singular: contract.singular }, uuid, key),
        );
      },
    );
  }
}
