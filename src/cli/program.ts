/**
 * The `nimbus` program: session commands plus one command per contract kind, and the single place
 * where failures become an exit code (0 ok, 1 refused by the server or a failed job, 2 bad usage).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addSessionCommands } from './auth.js';
import { KINDS } from './catalog.js';
import { addClusterStatus } from './cluster-status.js';
import { addCompletion, completionWords } from './completion.js';
import { addVmConsole } from './console.js';
import { type Ctx, processCtx } from './context.js';
import { describeError, EXIT_USAGE } from './errors.js';
import { addEventTail, addQuotaSet } from './extras.js';
import { addKindCommand } from './kinds.js';
import { addWebhookDeliveries } from './webhook-deliveries.js';

const EXAMPLES = `
Examples:
  nimbus login --url http://127.0.0.1:8080 --account admin      (password: prompt or NIMBUS_PASSWORD)
  nimbus vm list                                                 (appliance VMs: --appliances)
  nimbus host list --q state=Enabled --q 'cpuTotal>=8' --sort -name
  nimbus vm list -f value -c name -c ips                         (-f table|value|csv|json|yaml)
  nimbus cluster list --q 'zone.name=z1' -f json --all
  nimbus vm create --name web1 --image ubuntu-22.04 --offering small --l3 public --wait
  nimbus job wait <job-uuid> --timeout 60
  nimbus event tail                                              (follow events as they happen)
  nimbus vm console web1                                         (a VNC WebSocket URL for noVNC)
  nimbus quota set <account> vm.num=50 vm.memory=64G
  source <(nimbus completion bash)                               (or: nimbus completion zsh)

Objects are named by uuid or by name (a name must match exactly one).
Async commands print their job and return; --wait follows the job and fails if it fails.

Environment:
  NIMBUS_PROFILE   profile file (default ~/.nimbus/profile.json)
  NIMBUS_URL       server URL, overrides the profile
  NIMBUS_TOKEN     session token, overrides the profile
  NIMBUS_PASSWORD  password for nimbus login

Exit codes: 0 ok, 1 the server refused or a job failed, 2 bad command line`;

/** The version of the package the CLI ships in, whichever tree (src or dist) it runs from. */
function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8'));
      if (
        typeof pkg === 'object' &&
        pkg !== null &&
        'name' in pkg &&
        pkg.name === 'nimbus' &&
        'version' in pkg
      ) {
        return String(pkg.version);
      }
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

/** Commander settings are per command; the generated tree gets them all the way down. */
function configure(cmd: Command): void {
  cmd.exitOverride();
  cmd.showHelpAfterError('(add --help for usage)');
  for (const sub of cmd.commands) configure(sub);
}

/**
 * The whole command tree, or (`only`) the tree of one noun in full and the others by name:
 * building every kind's flags costs more than a command's start-up should (bench/cli.ts).
 */
export function buildProgram(ctx: Ctx, only?: string): Command {
  const program = new Command('nimbus')
    .description('Nimbus cloud command line: compute, storage, networks, accounts, jobs and events')
    .version(version(), '-V, --version')
    .addHelpText('after', EXAMPLES);
  addSessionCommands(program, ctx);
  for (const kind of KINDS) {
    const cmd = addKindCommand(program, kind, ctx, only === undefined || only === kind.singular);
    if (kind.kind === 'quotas' && (only === undefined || only === kind.singular)) addQuotaSet(cmd, kind, ctx);
    if (kind.kind === 'events' && (only === undefined || only === kind.singular)) addEventTail(cmd, ctx);
    if (kind.kind === 'clusters' && (only === undefined || only === kind.singular))
      addClusterStatus(cmd, ctx);
    if (kind.kind === 'vms' && (only === undefined || only === kind.singular)) addVmConsole(cmd, ctx);
    if (kind.kind === 'webhooks' && (only === undefined || only === kind.singular))
      addWebhookDeliveries(cmd, ctx);
  }
  addCompletion(program, ctx);
  configure(program);
  return program;
}

/** The noun a command line names (its first word that is not an option), if it is a kind. */
function nounOf(argv: string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  const first = words[0] === 'help' ? words[1] : words[0];
  return KINDS.some((k) => k.singular === first) ? first : undefined;
}

export async function run(argv: string[], ctx: Ctx = processCtx()): Promise<number> {
  if (argv[0] === '__complete') {
    ctx.out(completionWords(buildProgram(ctx, nounOf(argv.slice(1))), argv.slice(1)).join('\n'));
    return 0;
  }
  // a noun builds only its own tree; anything else (help, login, --version) needs no kind's flags
  const program = buildProgram(ctx, nounOf(argv) ?? '');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its own message (or the help/version it was asked for).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    const { text, exitCode } = describeError(err, ctx.color);
    ctx.err(text);
    return exitCode;
  }
}
