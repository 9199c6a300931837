/**
 * The README's walk-through runs, top to bottom, on a fresh node with the demo environment, so the
 * README can never drift from what the CLI and the server really do. Each command of the blocks
 * marked `<!-- walkthrough -->` (test/support/walkthrough.ts) runs through bash in order, with
 * `npx nimbus` mapped to the built CLI, the README's URL and password mapped to this node's, and
 * shell variables kept from one command to the next (NIC=$(…) then --vm-nic $NIC). The first
 * command that exits non-zero (or succeeds where the README says `# → error CODE`) fails the test
 * with the command, its README line and its output.
 * Also: the admin password recovery the README describes, against this node's database.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createDemoEnvironment } from '../../src/demo.js';
import { resetAdminPasswordCommand } from '../../src/reset-admin-password.js';
import { ADMIN_PASSWORD, Api, startTestNode, type TestNode } from '../support/node.js';
import { walkthroughCommands } from '../support/walkthrough.js';

const README = join(process.cwd(), 'README.md');
const CLI = join(process.cwd(), 'bin', 'nimbus.js');

interface Outcome {
  code: number | null;
  output: string;
}

/** One command in bash, with the variables earlier commands set (kept in `state`). */
function sh(command: string, state: string, env: Record<string, string>): Promise<Outcome> {
  const script = [
    'set -a', // every assignment is exported, so `export -p` below carries it to the next command
    `source ${JSON.stringify(state)}`,
    // `npx nimbus` is the CLI just built (npx would look for a published package otherwise)
    `npx() { if [ "$1" = nimbus ]; then shift; node ${JSON.stringify(CLI)} "$@"; else command npx "$@"; fi; }`,
    command,
    'rc=$?',
    `export -p | grep -v -E '^declare -x (BASHOPTS|SHELLOPTS|PWD|OLDPWD|SHLVL|_)=' > ${JSON.stringify(state)}`,
    'exit $rc',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the README walk-through, top to bottom on a fresh node', () => {
  let t: TestNode;
  let dir: string;

  before(async () => {
    t = await startTestNode();
    const admin = await t.db.db
      .selectFrom('accounts')
      .select('uuid')
      .where('type', '=', 'admin')
      .executeTakeFirstOrThrow();
    assert.ok(
      await createDemoEnvironment(
        t.node.services,
        t.node.kindServices,
        admin.uuid,
        pino({ level: 'silent' }),
      ),
    );
    dir = mkdtempSync(join(tmpdir(), 'nimbus-readme-'));
  });
  after(async () => {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every walk-through command does what the README says', { timeout: 600_000 }, async () => {
    const commands = walkthroughCommands(readFileSync(README, 'utf8'));
    assert.ok(commands.length >= 40, `only ${commands.length} walk-through commands found`);
    const state = join(dir, 'state.sh');
    writeFileSync(state, '');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      NIMBUS_PROFILE: join(dir, 'profile.json'),
      NO_COLOR: '1',
      LANG: 'C.UTF-8',
    };
    for (const cmd of commands) {
      const text = cmd.text
        .replaceAll('http://127.0.0.1:8080', t.url)
        .replaceAll('<printed password>', ADMIN_PASSWORD);
      const r = await sh(text, state, env);
      const where = `README.md:${cmd.line}: ${cmd.text}\n--- output (exit ${r.code}) ---\n${r.output}`;
      if (cmd.expectError) {
        assert.notEqual(r.code, 0, `expected to fail with ${cmd.expectError}: ${where}`);
        assert.match(r.output, new RegExp(`error ${cmd.expectError}\\b`), where);
      } else {
        assert.equal(r.code, 0, where);
      }
      assert.doesNotMatch(r.output, /\n\s+at .+:\d+:\d+/, `stack trace: ${where}`);
    }
  });

  test('a lost admin password is reset from the database, and the old sessions end', async () => {
    const before = await t.anon.login('admin', ADMIN_PASSWORD);
    assert.equal((await before.get('/v1/zones')).status, 200);
    const fresh = await resetAdminPasswordCommand({ dataDir: dir, databaseUrl: t.db.url });
    assert.ok(fresh.length >= 12);
    assert.equal(
      (await new Api(t.url).post('/v1/auth/login', { account: 'admin', password: ADMIN_PASSWORD })).status,
      401,
    );
    const after = await t.anon.login('admin', fresh);
    assert.equal((await after.get('/v1/zones')).status, 200);
    // a node caches a validated token for a few seconds (sessions.ts): revocation lands within them
    let status = 200;
    for (let i = 0; i < 40 && status !== 401; i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await before.get('/v1/zones')).status;
    }
    assert.equal(status, 401, 'sessions of the old password are revoked');
    // and back, so a password given in the environment is used as is
    assert.equal(
      await resetAdminPasswordCommand({ dataDir: dir, databaseUrl: t.db.url, password: ADMIN_PASSWORD }),
      ADMIN_PASSWORD,
    );
    await t.anon.login('admin', ADMIN_PASSWORD);
  });
});
