/**
 * Session commands: login (writes the profile), logout (revokes the token, then forgets it),
 * whoami (what the profile says) and health. The password never goes into the profile; it comes
 * from --password, NIMBUS_PASSWORD or a prompt that does not echo.
 */
import type { Command } from 'commander';
import type { Ctx } from './context.js';
import { ApiError, ConnectionError, LocalError, UsageError } from './errors.js';
import { ApiClient, normalizeUrl, splitUrls } from './http.js';
import { type Profile, profilePath, readProfile, resolveConnection, writeProfile } from './profile.js';

/** One URL, or several separated by commas (the nodes of a cluster: the CLI fails over). */
function checkUrl(raw: string): string {
  const urls = splitUrls(raw);
  if (urls.length === 0) throw new UsageError(`'${raw}' is not a URL (e.g. http://127.0.0.1:8080)`);
  for (const one of urls) {
    let url: URL;
    try {
      url = new URL(one);
    } catch {
      throw new UsageError(`'${one}' is not a URL (e.g. http://127.0.0.1:8080)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`'${one}' must start with http:// or https://`);
    }
  }
  return urls.map(normalizeUrl).join(',');
}

/** Reads a line from the terminal without echoing it. */
function promptPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let password = '';
    const finish = () => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(password);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new UsageError('login cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') password = password.slice(0, -1);
        else password += ch;
      }
    };
    stdin.on('data', onData);
  });
}

interface LoginAnswer {
  token: string;
  expiresAt?: string;
  accountUuid?: string;
  userUuid?: string;
}

function loginAnswer(body: unknown): LoginAnswer {
  if (typeof body !== 'object' || body === null || !('token' in body) || typeof body.token !== 'string') {
    throw new LocalError('BAD_ANSWER', 'the server answered the login without a token');
  }
  return body as LoginAnswer;
}

function addLogin(program: Command, ctx: Ctx): void {
  program
    .command('login')
    .description('log in and remember the server and session in the profile')
    .option('--url <url>', 'server URL (default: NIMBUS_URL or the profile’s)')
    .option('--account <name>', 'account to log in to (default: the profile’s)')
    .option('--user <name>', 'user of the account (default: the account’s first user)')
    .option(
      '--password <password>',
      'password (prefer NIMBUS_PASSWORD or the prompt: arguments are visible to ps)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  NIMBUS_PASSWORD=secret nimbus login --url http://127.0.0.1:8080 --account admin',
    )
    .action(async (o: { url?: string; account?: string; user?: string; password?: string }) => {
      const previous = readProfile(ctx.env);
      const rawUrl = o.url ?? ctx.env.NIMBUS_URL ?? previous?.url;
      if (!rawUrl) throw new UsageError('--url is required (e.g. --url http://127.0.0.1:8080)');
      const url = checkUrl(rawUrl);
      const account = o.account ?? previous?.account;
      if (!account) throw new UsageError('--account is required (e.g. --account admin)');
      let password = o.password ?? ctx.env.NIMBUS_PASSWORD;
      if (password === undefined) {
        if (!process.stdin.isTTY)
          throw new UsageError('no password: give --password, set NIMBUS_PASSWORD, or run in a terminal');
        password = await promptPassword(`password for ${o.user ? `${o.user}@` : ''}${account}: `);
      }
      const body: Record<string, string> = { account, password };
      if (o.user) body.user = o.user;
      const res = await new ApiClient(url, undefined)
        .request('POST', '/v1/auth/login', { body, auth: false })
        .catch((err: unknown) => {
          if (err instanceof ApiError) err.duringLogin = true;
          throw err;
        });
      const answer = loginAnswer(res.body);
      const profile: Profile = { url, token: answer.token, account };
      if (answer.expiresAt) profile.expiresAt = answer.expiresAt;
      if (o.user) profile.user = o.user;
      if (answer.accountUuid) profile.accountUuid = answer.accountUuid;
      if (answer.userUuid) profile.userUuid = answer.userUuid;
      const path = writeProfile(profile, ctx.env);
      const until = answer.expiresAt ? ` until ${answer.expiresAt}` : '';
      ctx.out(`logged in to ${url} as ${o.user ? `${o.user}@` : ''}${account}${until} (profile ${path})`);
    });
}

function addLogout(program: Command, ctx: Ctx): void {
  program
    .command('logout')
    .description('revoke the session token and forget it')
    .action(async () => {
      const conn = resolveConnection(ctx.env);
      if (conn.token) {
        try {
          await new ApiClient(conn.url, conn.token).request('POST', '/v1/auth/logout');
        } catch (err) {
          // Already revoked or expired, or the server is gone: forgetting the token is still right.
          if (!(err instanceof ApiError && err.status === 401) && !(err instanceof ConnectionError))
            throw err;
          if (err instanceof ConnectionError)
            ctx.err(`warning: ${err.message}; the token was only forgotten locally`);
        }
      }
      const profile = readProfile(ctx.env);
      if (profile) {
        const { token: _token, expiresAt: _expiresAt, ...rest } = profile;
        writeProfile(rest, ctx.env);
      }
      ctx.out('logged out');
    });
}

function addWhoami(program: Command, ctx: Ctx): void {
  program
    .command('whoami')
    .description('show the server and session the CLI uses (from the profile and environment)')
    .action(() => {
      const profile = readProfile(ctx.env);
      const conn = resolveConnection(ctx.env);
      const who = profile?.account
        ? `${profile.user ? `${profile.user}@` : ''}${profile.account}`
        : '(unknown)';
      const lines = [`url:     ${conn.url}${ctx.env.NIMBUS_URL ? ' (NIMBUS_URL)' : ''}`, `account: ${who}`];
      if (!conn.token) lines.push('session: none (run `nimbus login`)');
      else if (ctx.env.NIMBUS_TOKEN) lines.push('session: token from NIMBUS_TOKEN');
      else if (profile?.expiresAt) {
        const expired = Date.parse(profile.expiresAt) <= Date.now();
        lines.push(`session: ${expired ? 'expired at' : 'valid until'} ${profile.expiresAt}`);
      } else lines.push('session: token stored');
      lines.push(`profile: ${profilePath(ctx.env)}`);
      ctx.out(lines.join('\n'));
    });
}

function addHealth(program: Command, ctx: Ctx): void {
  program
    .command('health')
    .description('check that the server and its database answer')
    .action(async () => {
      const res = await ctx.client().request('GET', '/v1/health', { auth: false });
      const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as Record<
        string,
        unknown
      >;
      ctx.out(
        Object.entries(body)
          .map(([k, v]) => `${k}: ${String(v)}`)
          .join('\n') || 'ok',
      );
      if (body.status !== undefined && body.status !== 'ok')
        throw new LocalError('UNHEALTHY', `server status ${String(body.status)}`);
    });
}

export function addSessionCommands(program: Command, ctx: Ctx): void {
  addLogin(program, ctx);
  addLogout(program, ctx);
  addWhoami(program, ctx);
  addHealth(program, ctx);
}
