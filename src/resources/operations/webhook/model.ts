/**
 * Webhooks and their deliveries: families, query schemas, and the checks every write of a
 * webhook passes (a usable URL, known event types). Both kinds are their account's: a tenant
 * sees its own webhooks and their deliveries, the admin sees all.
 */
import { isWebhookEventType } from '../../../contract/webhooks.js';
import type { KindSchema } from '../../../engine/query/schema.js';
import type { FieldProblem } from '../../../kernel/errors.js';
import type { Family } from '../../common.js';

export const webhookFamily: Family = { singular: 'webhook', kind: 'webhooks', table: 'webhooks' };

export const webhookSchema: KindSchema = {
  kind: 'webhooks',
  table: 'webhooks',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    name: 'string',
    description: 'string',
    url: 'string',
    allAccounts: 'boolean',
    maxAttempts: 'int',
    state: { enum: ['Enabled', 'Disabled'] },
    accountUuid: 'uuid',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  // never `secret`: no read shows it
  selectOnly: ['eventTypes'],
  relations: {
    deliveries: { kind: 'webhook-deliveries', local: 'uuid', remote: 'webhookUuid', many: true },
  },
  defaultSort: 'createdAt',
};

export const webhookDeliverySchema: KindSchema = {
  kind: 'webhook-deliveries',
  table: 'webhookDeliveries',
  visibility: 'owned',
  fields: {
    uuid: 'uuid',
    webhookUuid: 'uuid',
    accountUuid: 'uuid',
    eventId: 'int',
    eventUuid: 'uuid',
    eventType: 'string',
    state: { enum: ['Pending', 'Succeeded', 'Failed'] },
    attempts: 'int',
    nextAttemptAt: 'timestamp',
    lastStatus: 'int',
    lastError: 'string',
    lastAttemptAt: 'timestamp',
    deliveredAt: 'timestamp',
    createdAt: 'timestamp',
  },
  relations: {
    webhook: { kind: 'webhooks', local: 'webhookUuid', remote: 'uuid' },
  },
  defaultSort: 'createdAt',
};

/** Every problem of a webhook body's URL and event types, each naming its field. */
export function webhookProblems(body: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (body.url !== undefined) {
    const raw = String(body.url);
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      problems.push({ field: 'url', problem: `'${raw}' is not a URL` });
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
      problems.push({
        field: 'url',
        problem: `must be http or https, not ${url.protocol.replace(/:$/, '')}`,
      });
    else if (url && (url.username || url.password))
      problems.push({ field: 'url', problem: 'must carry no credentials: the signature authenticates us' });
  }
  if (Array.isArray(body.eventTypes))
    for (const t of body.eventTypes as string[])
      if (!isWebhookEventType(t))
        problems.push({
          field: 'eventTypes',
          problem: `unknown event type '${t}' (see GET /v1/webhooks docs: lease.expiring, lease.*, *, …)`,
        });
  return problems;
}

/** The API shape of a webhook row (the secret is never in it). */
export function presentWebhook(row: Record<string, unknown>): Record<string, unknown> {
  const { secret: _secret, ...shown } = row;
  return shown;
}
