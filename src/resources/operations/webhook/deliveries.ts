/**
 * The delivery log as a read-only kind (`GET /v1/webhook-deliveries`, paged and queryable like
 * every list: `q=webhookUuid=…`, `q=state=Failed`). Rows are made by the outbox trigger and
 * changed only by the delivery loop (deliver.ts).
 */
import { webhookDeliveries as contract } from '../../../contract/webhooks.js';
import type { KindService } from '../../service.js';
import { webhookDeliverySchema } from './model.js';

export const webhookDeliveryService: KindService = {
  contract,
  schema: webhookDeliverySchema,
  present: (row) => ({ ...row, ...(row.eventId !== undefined ? { eventId: String(row.eventId) } : {}) }),
};
