/** Runs the `nimbus` CLI as a child process, as a user would, with its own profile file. */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'bin', 'nimbus.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI runner bound to a fresh profile path (`profile`: where its login is stored). */
export function cliRunner(): { profile: string; run(args: string[]): Promise<CliResult> } {
  const profile = join(mkdtempSync(join(tmpdir(), 'nimbus-cli-')), 'profile.json');
  return {
    profile,
    run: (args) =>
      new Promise<CliResult>((resolve) => {
        execFile(
          process.execPath,
          [CLI, ...args],
          { env: { ...process.env, NIMBUS_PROFILE: profile, NO_COLOR: '1' }, timeout: 60_000 },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      }),
  };
}
