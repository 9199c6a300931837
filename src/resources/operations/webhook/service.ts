/**
 * Webhooks as the API sees them. Any account makes its own (an admin account's hear every
 * account's events: `allAccounts`). Create and update do all their work in the admitting
 * transaction and record the job as finished (as a pool hand-out does): the secret then never
 * passes through a job's parameters, a result or an event — only the `webhooks` row holds it.
 * A create that names no secret gets a generated one, shown once in that answer's `secrets`.
 * Delete, enable and disable are the standard chains. The node's delivery loop runs here
 * (deliver.ts).
 */
import { randomBytes } from 'node:crypto';
import { webhooks as contract } from '../../../contract/webhooks.js';
import { isUniqueViolation } from '../../../db/errors.js';
import { attachSecrets } from '../../../engine/job-secrets.js';
import type { JobRow } from '../../../engine/jobs.js';
import { PeriodicTask } from '../../../engine/periodic.js';
import type { Caller } from '../../../kernel/caller.js';
import { CloudError, invalid } from '../../../kernel/errors.js';
import { newId } from '../../../kernel/ids.js';
import { changeFlow, deleteFlow, loadVisible, queueKey, resourceEvent } from '../../common.js';
import type { KindService, ServiceContext } from '../../service.js';
import { deliveryPass, type PassResult } from './deliver.js';
import {
  webhookFamily as family,
  presentWebhook,
  webhookSchema as schema,
  webhookProblems,
} from './model.js';

const nameTaken = (name: unknown) =>
  new CloudError('AlreadyExists', 'WEBHOOK_NAME_TAKEN', `the account already has a webhook named '${name}'`, {
    details: { field: 'name' },
  });

/** The columns a body sets (the secret included), and the event's data (never the secret). */
function columnsOf(body: Record<string, unknown>) {
  const cols: Record<string, unknown> = {};
  for (const f of ['name', 'description', 'url', 'maxAttempts', 'secret'] as const)
    if (body[f] !== undefined) cols[f] = body[f];
  if (body.eventTypes !== undefined) cols.eventTypes = JSON.stringify(body.eventTypes);
  const shown = Object.keys(body).filter((k) => k !== 'secret');
  return {
    cols,
    event: { changed: Object.keys(body), ...Object.fromEntries(shown.map((k) => [k, body[k]])) },
  };
}

export class WebhookService implements KindService {
  readonly contract = contract;
  readonly schema = schema;
  readonly present = presentWebhook;
  readonly actions;
  private task: PeriodicTask | undefined;

  constructor(private readonly ctx: ServiceContext) {
    const record = { name: 'record', async run() {} };
    ctx.engine.register({ kind: 'webhook.create', recovery: 'resume', steps: [record] });
    ctx.engine.register({ kind: 'webhook.update', recovery: 'resume', steps: [record] });
    ctx.engine.register(deleteFlow(family, []));
    const states = { enable: 'Enabled', disable: 'Disabled' } as const;
    const actions: Record<string, (caller: Caller, uuid: string) => Promise<JobRow>> = {};
    for (const [action, state] of Object.entries(states)) {
      ctx.engine.register({
        ...changeFlow(family, `webhook.${action}`, 'state.changed'),
        result: async (c) => presentWebhook(await this.row(c.params.uuid)),
      });
      actions[action] = async (caller, uuid) => {
        const row = await loadVisible(ctx, schema, uuid, caller);
        return ctx.engine.submitAndStart({
          ...this.spec(caller, row, `webhook.${action}`),
          params: { uuid, changes: { state } },
        });
      };
    }
    this.actions = actions;
  }

  private row(uuid: string) {
    return this.ctx.db.selectFrom('webhooks').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();
  }

  private spec(caller: Caller, row: { uuid: string; accountUuid: string }, kind: string) {
    return {
      kind,
      accountUuid: row.accountUuid,
      userUuid: caller.userUuid,
      resourceKind: family.kind,
      resourceUuid: row.uuid,
      queueKey: queueKey(family, row.uuid),
      requestId: caller.requestId,
    };
  }

  async create(caller: Caller, body: Record<string, unknown>): Promise<JobRow> {
    const problems = webhookProblems(body);
    if (problems.length > 0) throw invalid(problems);
    const generated = body.secret === undefined ? randomBytes(32).toString('base64url') : undefined;
    const uuid = newId();
    const { cols, event } = columnsOf({ ...body, secret: generated ?? body.secret });
    try {
      const job = await this.ctx.events.inTransaction(this.ctx.db, async (tx, batch) => {
        const row = await tx
          .insertInto('webhooks')
          .values({
            uuid,
            accountUuid: caller.accountUuid,
            allAccounts: caller.isAdmin,
            description: null,
            ...(cols as { name: string; url: string; eventTypes: string; secret: string }),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        batch.add(resourceEvent(family, row, 'created', event));
        return this.ctx.engine.recordFinished(
          tx,
          { ...this.spec(caller, row, 'webhook.create'), done: ['record'] },
          presentWebhook(row),
          batch,
        );
      });
      return generated ? attachSecrets(job, { secret: generated }) : job;
    } catch (err) {
      throw isUniqueViolation(err, 'webhooks_name_key') ? nameTaken(body.name) : err;
    }
  }

  // a property: the routes call it unbound
  readonly update = async (caller: Caller, uuid: string, body: Record<string, unknown>): Promise<JobRow> => {
    const current = await loadVisible(this.ctx, schema, uuid, caller);
    const problems = webhookProblems(body);
    if (problems.length > 0) throw invalid(problems);
    const { cols, event } = columnsOf(body);
    try {
      return await this.ctx.events.inTransaction(this.ctx.db, async (tx, batch) => {
        const row = await tx
          .updateTable('webhooks')
          .set({ ...cols, updatedAt: new Date() })
          .where('uuid', '=', uuid)
          .returningAll()
          .executeTakeFirstOrThrow();
        batch.add(resourceEvent(family, row, 'updated', event));
        return this.ctx.engine.recordFinished(
          tx,
          { ...this.spec(caller, current, 'webhook.update'), done: ['record'] },
          presentWebhook(row),
          batch,
        );
      });
    } catch (err) {
      throw isUniqueViolation(err, 'webhooks_name_key') ? nameTaken(body.name) : err;
    }
  };

  async remove(caller: Caller, uuid: string): Promise<JobRow> {
    const row = await loadVisible(this.ctx, schema, uuid, caller);
    return this.ctx.engine.submitAndStart({ ...this.spec(caller, row, 'webhook.delete'), params: { uuid } });
  }

  start(): void {
    this.task = new PeriodicTask(
      this.ctx.deps.settings.webhookDeliveryIntervalSeconds * 1000,
      () => this.deliver(),
      (err) => this.ctx.deps.log.warn({ err }, 'webhook delivery pass failed'),
    ).start();
  }

  async stop(): Promise<void> {
    await this.task?.stop();
  }

  /** One delivery pass (tests pass a `now` of their choosing to move the retry clock). */
  deliver(now = new Date()): Promise<PassResult> {
    return deliveryPass(this.ctx, now);
  }
}
