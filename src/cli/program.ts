/**
 * The `nimbus` program: session commands plus one command per contract kind, and the single place
 * where failures become an exit code (0 ok, 1 refused by the server or a failed job, 2 bad usage).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { KINDS } from '../contract/kinds.js';
import { addSessionCommands } from './auth.js';
import { type Ctx, processCtx } from './context.js';
import { describeError, EXIT_USAGE } from './errors.js';
import { addKindCommand } from './kinds.js';

const EXAMPLES = `
Examples:
  nimbus login --url http://127.0.0.1:8080 --account admin      (password: prompt or NIMBUS_PASSWORD)
  nimbus host list --q state=Enabled --q 'cpuTotal>=8' --sort -name
  nimbus cluster list --q 'zone.name=z1' -o json
  nimbus host create --name h1 --cluster c1 --management-ip 10.0.0.11 --simulator-memory 64G --wait
  nimbus host enable h1 --wait
  nimbus job wait <job-uuid>

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

export function buildProgram(ctx: Ctx): Command {
  const program = new Command('nimbus')
    .description('Nimbus cloud command line: manage zones, clusters, hosts, accounts and jobs')
    .version(version(), '-V, --version')
    .addHelpText('after', EXAMPLES);
  addSessionCommands(program, ctx);
  for (const kind of KINDS) addKindCommand(program, kind, ctx);
  configure(program);
  return program;
}

export async function run(argv: string[], ctx: Ctx = processCtx()): Promise<number> {
  const program = buildProgram(ctx);
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
