/**
 * The login profile: where the server is and the session token. The token is a credential, so the
 * file is only ever readable by its owner (0600 in a 0700 directory), whatever the umask, and it
 * is replaced atomically so a crash never leaves half a profile.
 * NIMBUS_PROFILE moves the file (tests, several clouds); NIMBUS_URL / NIMBUS_TOKEN override it.
 * `url` may list several servers separated by commas (the CLI fails over between them: http.ts).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from './errors.js';

export interface Profile {
  url: string;
  token?: string;
  expiresAt?: string;
  account?: string;
  user?: string;
  accountUuid?: string;
  userUuid?: string;
}

type Env = Record<string, string | undefined>;

export function profilePath(env: Env = process.env): string {
  return env.NIMBUS_PROFILE || join(homedir(), '.nimbus', 'profile.json');
}

export function readProfile(env: Env = process.env): Profile | undefined {
  const path = profilePath(env);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UsageError(`the profile ${path} is not valid JSON: run \`nimbus login\` again`);
  }
  if (typeof parsed !== 'object' || parsed === null || !('url' in parsed) || typeof parsed.url !== 'string') {
    throw new UsageError(`the profile ${path} has no url: run \`nimbus login\` again`);
  }
  return parsed as Profile;
}

export function writeProfile(profile: Profile, env: Env = process.env): string {
  const path = profilePath(env);
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  // mode applies only when the file is created, and the umask may have narrowed it differently.
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}

export interface Connection {
  url: string;
  token: string | undefined;
}

/** The server and token to use: environment first, then the profile. */
export function resolveConnection(env: Env = process.env): Connection {
  const profile = readProfile(env);
  const url = env.NIMBUS_URL || profile?.url;
  if (!url) {
    throw new UsageError(
      'not logged in: run `nimbus login --url <url> --account <account>` (or set NIMBUS_URL)',
    );
  }
  return { url, token: env.NIMBUS_TOKEN || profile?.token };
}
