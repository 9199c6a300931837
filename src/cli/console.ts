/**
 * `nimbus vm console <vm>`: asks for the VM's console (POST /v1/vms/{uuid}/actions/console) and
 * prints the WebSocket URL and its single-use token, for noVNC or any WebSocket VNC client. The
 * answer is not a job, so this is not one of the generated action commands (kinds.ts).
 */
import { type Command, Option } from 'commander';
import { KINDS } from './catalog.js';
import type { Ctx } from './context.js';
import { LocalError } from './errors.js';
import { itemPath } from './reads.js';
import { resolveId } from './resolve.js';

interface ConsoleAnswer {
  url?: string;
  token?: string;
  expiresAt?: string;
  protocol?: string;
}

export function addVmConsole(parent: Command, ctx: Ctx): void {
  parent
    .command('console')
    .description(
      "open a Running VM's console: prints a WebSocket URL (VNC, for noVNC) and its single-use token",
    )
    .argument('<vm>', 'the VM, by name or uuid')
    .addOption(
      new Option('-f, --output <format>', 'labelled lines, or the answer as JSON')
        .choices(['table', 'json'])
        .default('table'),
    )
    .addHelpText('after', '\nThe token opens one console and expires within a minute: open the URL at once.')
    .action(async (vm: string, o: { output: string }) => {
      const kind = KINDS.find((k) => k.kind === 'vms');
      if (!kind) throw new LocalError('NO_KIND', 'this CLI knows no vms');
      const uuid = await resolveId(ctx.client(), kind, vm);
      const res = await ctx.client().request('POST', `${itemPath(kind, uuid)}/actions/console`, { body: {} });
      const answer = res.body as ConsoleAnswer;
      if (o.output === 'json') {
        ctx.out(JSON.stringify(answer, null, 2));
        return;
      }
      ctx.out(`url:       ${answer.url ?? ''}`);
      ctx.out(`token:     ${answer.token ?? ''}`);
      ctx.out(`expiresAt: ${answer.expiresAt ?? ''}`);
      ctx.out(`protocol:  ${answer.protocol ?? ''}`);
    });
}
