/**
 * Test-only: runs the network part inside whatever network namespace this process was put in
 * (`nsenter --net=/run/netns/<host> node runner.js '<options JSON>'`), answering one JSON request
 * per stdin line — `{id, op: 'command'|'ensureTap'|'removeTap'|'cleanupAll', command?, request?}` —
 * with one JSON line `{id, result}` or `{id, error: {code, reason, message}}`. It stands in for
 * nimbus-agent's HTTP server so the part is tested as a real host would run it.
 */
import { createInterface } from 'node:readline';
import type { NicSpec } from '../../../contract/agent.js';
import { CloudError } from '../../../kernel/errors.js';
import type { AgentHandler } from '../../handlers.js';
import { createNetworkPart, type NetworkPartOptions } from '../index.js';

interface Request {
  id: number;
  op: 'command' | 'ensureTap' | 'removeTap' | 'cleanupAll';
  command?: string;
  request?: unknown;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as NetworkPartOptions;
const part = createNetworkPart({
  ...opts,
  log: {
    info: (o, m) => process.stderr.write(`${JSON.stringify({ level: 'info', msg: m, ...o })}\n`),
    warn: (o, m) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: m, ...o })}\n`),
  },
});

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'command': {
      const h = (part.handlers as Record<string, AgentHandler<never> | undefined>)[req.command ?? ''];
      if (!h) throw new CloudError('NotFound', 'AGENT_COMMAND_UNKNOWN', `no handler for ${req.command}`);
      return h(req.request as never);
    }
    case 'ensureTap':
      return part.plugger.ensureTap(req.request as NicSpec);
    case 'removeTap':
      return part.plugger.removeTap(req.request as string);
    case 'cleanupAll':
      return part.cleanupAll();
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line) as Request;
  handle(req).then(
    (result) => process.stdout.write(`${JSON.stringify({ id: req.id, result: result ?? null })}\n`),
    (err: unknown) => {
      const e =
        err instanceof CloudError
          ? { code: err.code, reason: err.reason, message: err.message }
          : { code: 'AGENT_INTERNAL', reason: 'Internal', message: String((err as Error)?.message ?? err) };
      process.stdout.write(`${JSON.stringify({ id: req.id, error: e })}\n`);
    },
  );
});
