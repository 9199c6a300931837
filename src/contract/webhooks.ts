/**
 * Wire shapes of webhooks (docs/webhooks.md): a URL told of the events it wants, signed and
 * retried, and the log of its deliveries. A tenant's webhook hears its own account's events; an
 * admin's hears every account's. The secret is write-only: no answer ever carries it, except the
 * one generated for a create that named none (in that answer's `secrets`, once).
 */
import { Type } from 'typebox';
import { base, Description, Empty, EnabledState, Name, Nullable, strict, Timestamp, Uuid } from './common.js';
import type { KindContract } from './kind-contract.js';

/**
 * The event types a webhook may name. Each part of Nimbus that wants its events heard adds
 * them here; `<family>.*` names every event of a family (`lease.*`, `vm.*`) and `*` all.
 */
export const WEBHOOK_EVENT_TYPES = [
  'lease.created',
  'lease.pending',
  'lease.expiring',
  'lease.stopped',
  'lease.reclaimed',
  'lease.released',
  'lease.renewed',
  'lease.ended',
  'lease.login.delivered',
  'vm.created',
  'vm.state.changed',
  'vm.deleted',
  'vm.expunged',
  'vm.healed',
  'host.status.changed',
] as const;

/** `lease.*`: every event whose type starts with `lease.` */
export const WEBHOOK_FAMILIES = ['lease', 'vm', 'pool', 'host', 'volume', 'image', 'eip', 'job'] as const;

export function isWebhookEventType(t: string): boolean {
  if (t === '*') return true;
  if (t.endsWith('.*')) return (WEBHOOK_FAMILIES as readonly string[]).includes(t.slice(0, -2));
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(t);
}

const EventTypes = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  minItems: 1,
  maxItems: 50,
  uniqueItems: true,
  description: `event types to receive: ${WEBHOOK_EVENT_TYPES.join(', ')}; or <family>.* (${WEBHOOK_FAMILIES.join(', ')}); or *`,
});
const Url = Type.String({
  minLength: 8,
  maxLength: 2048,
  description: 'http(s) URL the events are POSTed to',
});
const Secret = Type.String({
  minLength: 16,
  maxLength: 256,
  description:
    'HMAC-SHA256 key of the Nimbus-Signature header (write-only; generated and shown once when absent)',
});
const MaxAttempts = Type.Integer({
  minimum: 1,
  maximum: 50,
  description: 'attempts before a delivery is given up (default 8)',
});

export const webhooks: KindContract = {
  kind: 'webhooks',
  singular: 'webhook',
  summary: 'a URL told of the events it wants: signed, retried with backoff, every delivery logged',
  resource: Type.Object({
    ...base,
    url: Type.String(),
    eventTypes: Type.Array(Type.String()),
    allAccounts: Type.Boolean({ description: 'an admin’s webhook: hears every account’s events' }),
    maxAttempts: Type.Integer(),
    state: EnabledState,
  }),
  create: Type.Object(
    {
      name: Name,
      description: Type.Optional(Description),
      url: Url,
      eventTypes: EventTypes,
      secret: Type.Optional(Secret),
      maxAttempts: Type.Optional(MaxAttempts),
    },
    strict,
  ),
  update: Type.Object(
    {
      name: Type.Optional(Name),
      description: Type.Optional(Description),
      url: Type.Optional(Url),
      eventTypes: Type.Optional(EventTypes),
      secret: Type.Optional(Secret),
      maxAttempts: Type.Optional(MaxAttempts),
    },
    strict,
  ),
  actions: {
    enable: { summary: 'send it the events it wants again', body: Empty },
    disable: { summary: 'send it nothing (events meanwhile are not kept for it)', body: Empty },
  },
  deletable: true,
  taggable: false,
  columns: ['uuid', 'name', 'url', 'eventTypes', 'state'],
  adminOnly: false,
};

export const WEBHOOK_DELIVERY_STATES = ['Pending', 'Succeeded', 'Failed'] as const;

export const webhookDeliveries: KindContract = {
  kind: 'webhook-deliveries',
  singular: 'webhook-delivery',
  summary: 'the delivery log: one row per event a webhook wanted, with its attempts and last answer',
  resource: Type.Object({
    uuid: Uuid,
    webhookUuid: Uuid,
    accountUuid: Uuid,
    eventId: Type.String({ description: 'the event’s sequence number (GET /v1/events?q=id=…)' }),
    eventUuid: Uuid,
    eventType: Type.String(),
    state: Type.Enum(WEBHOOK_DELIVERY_STATES, {
      description: 'Pending: to be sent (again at nextAttemptAt); Succeeded: a 2xx answer; Failed: given up',
    }),
    attempts: Type.Integer(),
    nextAttemptAt: Timestamp,
    lastStatus: Nullable(Type.Integer({ description: 'HTTP status of the last attempt' })),
    lastError: Nullable(Type.String({ description: 'why the last attempt failed' })),
    lastAttemptAt: Nullable(Timestamp),
    deliveredAt: Nullable(Timestamp),
    createdAt: Timestamp,
  }),
  deletable: false,
  taggable: false,
  columns: ['uuid', 'eventType', 'state', 'attempts', 'lastStatus', 'nextAttemptAt'],
  adminOnly: false,
};

export const WEBHOOK_KINDS: KindContract[] = [webhooks, webhookDeliveries];
