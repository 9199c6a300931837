/**
 * `nimbus webhook deliveries [<webhook>] [--state Failed]`: a webhook's delivery log (the
 * `webhook-deliveries` kind, also `nimbus webhook-delivery list`), newest first, paged.
 */
import { type Command, Option } from 'commander';
import { WEBHOOK_DELIVERY_STATES } from '../contract/webhooks.js';
import { KINDS } from './catalog.js';
import type { Ctx } from './context.js';
import { LocalError } from './errors.js';
import { renderPage } from './output.js';
import { addOutputOptions, formatOf } from './reads.js';
import { resolveId } from './resolve.js';

export function addWebhookDeliveries(parent: Command, ctx: Ctx): void {
  const cmd = parent
    .command('deliveries')
    .description('the delivery log: state, attempts, last status and error of each event sent')
    .argument('[webhook]', 'only this webhook’s, by name or uuid')
    .addOption(
      new Option('--state <state>', 'only deliveries in this state').choices([...WEBHOOK_DELIVERY_STATES]),
    )
    .addOption(new Option('--limit <n>', 'at most this many (default 50)').default('50'))
    .addOption(new Option('--offset <n>', 'skip this many first').default('0'))
    .addHelpText('after', '\nExample:\n  nimbus webhook deliveries my-hook --state Failed');
  addOutputOptions(cmd).action(async (webhook: string | undefined, o: Record<string, string>, c: Command) => {
    const kinds = (k: string) => {
      const found = KINDS.find((x) => x.kind === k);
      if (!found) throw new LocalError('NO_KIND', `this CLI knows no ${k}`);
      return found;
    };
    const query: Array<[string, string]> = [
      ['sort', '-createdAt'],
      ['limit', o.limit ?? '50'],
      ['offset', o.offset ?? '0'],
    ];
    if (webhook)
      query.push(['q', `webhookUuid=${await resolveId(ctx.client(), kinds('webhooks'), webhook)}`]);
    if (o.state) query.push(['q', `state=${o.state}`]);
    const res = await ctx.client().get('/v1/webhook-deliveries', query);
    ctx.out(await renderPage(kinds('webhook-deliveries'), res.body, formatOf(c), { color: ctx.colorOut }));
  });
}
