/** The operations family's kinds beyond the foundation's jobs, events and tags: webhooks and their delivery log. */
import type { KindSchema } from '../../engine/query/schema.js';
import { webhookDeliveryService } from '../operations/webhook/deliveries.js';
import { webhookDeliverySchema, webhookSchema } from '../operations/webhook/model.js';
import { WebhookService } from '../operations/webhook/service.js';
import type { KindService, ServiceContext } from '../service.js';

export const operationsSchemas: KindSchema[] = [webhookSchema, webhookDeliverySchema];

export function operationsServices(ctx: ServiceContext): KindService[] {
  return [new WebhookService(ctx), webhookDeliveryService];
}
