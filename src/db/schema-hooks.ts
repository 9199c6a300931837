/** Row types of the webhook tables (0013-webhooks) and of VMs' guest configuration (0017-pool-login). */
import type { ColumnType, Generated } from 'kysely';
import type { Timestamp, WithDefault } from './columns.js';

export interface WebhookTable {
  uuid: string;
  name: string;
  description: string | null;
  accountUuid: string;
  url: string;
  eventTypes: ColumnType<string[], string, string>;
  /** the HMAC key: never returned by the API */
  secret: string;
  allAccounts: WithDefault<boolean>;
  maxAttempts: WithDefault<number>;
  state: WithDefault<'Enabled' | 'Disabled'>;
  createdAt: WithDefault<Date>;
  updatedAt: WithDefault<Date>;
}

export type WebhookDeliveryState = 'Pending' | 'Succeeded' | 'Failed';

export interface WebhookDeliveryTable {
  uuid: Generated<string>;
  webhookUuid: string;
  accountUuid: string;
  eventId: string;
  eventUuid: string;
  eventType: string;
  state: WithDefault<WebhookDeliveryState>;
  attempts: WithDefault<number>;
  nextAttemptAt: WithDefault<Date>;
  claimedBy: string | null;
  claimedUntil: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: WithDefault<Date>;
  updatedAt: Timestamp;
}

export interface VmGuestConfigTable {
  vmUuid: string;
  userData: string | null;
  instanceId: string | null;
  updatedAt: WithDefault<Date>;
}
