/**
 * User tags (key or key=value) on any taggable resource. A tag belongs to the resource's owner
 * account; one value per key per resource (setting a key again replaces its value). Tags are
 * queryable on every collection (`q=tag=env=prod`) and listed at /v1/tags.
 */

import type { Kysely } from 'kysely';
import type { TagBody } from '../../../contract/common.js';
import { tags as contract } from '../../../contract/foundation.js';
import type { FlowDef } from '../../../engine/flow.js';
import type { JobRow } from '../../../engine/jobs.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { Caller } from '../../../kernel/caller.js';
import { forbidden, notFound } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { loadVisible } from '../../common.js';
import type { FlowDeps, KindService, ServiceContext } from '../../service.js';

export const tagSchema: KindSchema = {
  kind: 'tags',
  table: 'tags',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    resourceKind: 'string',
    resourceUuid: 'uuid',
    accountUuid: 'uuid',
    key: 'string',
    value: 'string',
    createdAt: 'timestamp',
  },
  defaultSort: 'createdAt',
};

/** the tagged resource's kind: its query schema and its queue noun */
export interface TagTarget {
  schema: KindSchema;
  singular: string;
}

interface TagParams {
  resourceKind: string;
  /** the tagged resource's table (absent on jobs submitted before it was added: the kind) */
  resourceTable?: string;
  resourceUuid: string;
  key: string;
  value?: string | null;
}

const setFlow: FlowDef<TagParams, FlowDeps> = {
  kind: 'tag.set',
  recovery: 'resume',
  steps: [
    {
      name: 'set-tag',
      async run(ctx) {
        const p = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          // the resource may have gone since admission (a failed create rolled back, a delete ran):
          // a tag must not outlive it; the share lock makes a concurrent delete wait for this tag
          const target = await (tx as unknown as Kysely<Record<string, { uuid: string }>>)
            .selectFrom(p.resourceTable ?? p.resourceKind)
            .select('uuid')
            .where('uuid', '=', p.resourceUuid)
            .forShare()
            .executeTakeFirst();
          if (!target) throw notFound(p.resourceKind.replace(/s$/, ''), p.resourceUuid);
          await tx
            .insertInto('tags')
            .values({
              uuid: newId(),
              resourceKind: p.resourceKind,
              resourceUuid: p.resourceUuid,
              accountUuid: ctx.job.accountUuid,
              key: p.key,
              value: p.value ?? null,
            })
            .onConflict((oc) => oc.columns(['resourceUuid', 'key']).doUpdateSet({ value: p.value ?? null }))
            .execute();
          batch.add({
            type: 'tag.set',
            resourceKind: p.resourceKind,
            resourceUuid: p.resourceUuid,
            accountUuid: ctx.job.accountUuid,
            jobUuid: ctx.job.uuid,
            data: { key: p.key, value: p.value ?? null },
          });
        });
      },
    },
  ],
  result: (ctx) =>
    ctx.db
      .selectFrom('tags')
      .selectAll()
      .where('resourceUuid', '=', ctx.params.resourceUuid)
      .where('key', '=', ctx.params.key)
      .executeTakeFirst(),
};

const removeFlow: FlowDef<TagParams, FlowDeps> = {
  kind: 'tag.remove',
  recovery: 'resume',
  steps: [
    {
      name: 'remove-tag',
      async run(ctx) {
        const p = ctx.params;
        await ctx.deps.events.inTransaction(ctx.db, async (tx, batch) => {
          const gone = await tx
            .deleteFrom('tags')
            .where('resourceUuid', '=', p.resourceUuid)
            .where('key', '=', p.key)
            .executeTakeFirst();
          if (Number(gone.numDeletedRows) > 0) {
            batch.add({
              type: 'tag.removed',
              resourceKind: p.resourceKind,
              resourceUuid: p.resourceUuid,
              accountUuid: ctx.job.accountUuid,
              jobUuid: ctx.job.uuid,
              data: { key: p.key },
            });
          }
        });
      },
    },
  ],
};

export class TagService implements KindService {
  readonly contract = contract;
  readonly schema = tagSchema;

  constructor(private readonly ctx: ServiceContext) {
    ctx.engine.register(setFlow);
    ctx.engine.register(removeFlow);
  }

  async setTag(caller: Caller, target: TagTarget, uuid: string, body: TagBody): Promise<JobRow> {
    const row = await this.target(caller, target.schema, uuid);
    return this.submit(caller, target, row, 'tag.set', {
      resourceTable: target.schema.table,
      key: body.key,
      value: body.value ?? null,
    });
  }

  async removeTag(caller: Caller, target: TagTarget, uuid: string, key: string): Promise<JobRow> {
    const row = await this.target(caller, target.schema, uuid);
    return this.submit(caller, target, row, 'tag.remove', { key });
  }

  private async target(caller: Caller, schema: KindSchema, uuid: string) {
    const row = await loadVisible(this.ctx, schema, uuid, caller);
    // shared resources (zones…) are visible to all accounts but only their owner or the admin tags them
    if (!caller.isAdmin && row.accountUuid !== caller.accountUuid)
      throw forbidden(`only the owner may tag this ${schema.kind.replace(/s$/, '')}`);
    return row;
  }

  private submit(
    caller: Caller,
    target: TagTarget,
    row: { uuid: string; accountUuid: string },
    kind: string,
    extra: Record<string, unknown>,
  ): Promise<JobRow> {
    return this.ctx.engine.submitAndStart({
      kind,
      params: { resourceKind: target.schema.kind, resourceUuid: row.uuid, ...extra },
      accountUuid: row.accountUuid,
      userUuid: caller.userUuid,
      resourceKind: target.schema.kind,
      resourceUuid: row.uuid,
      // the resource's own queue: a tag change waits for operations on it already in flight
      queueKey: `${target.singular}:${row.uuid}`,
      requestId: caller.requestId,
    });
  }
}
