import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLUSTER, FakeServer, PASSWORD, ZONE } from './fake-server.js';

// the bundle, as `nimbus` runs (bin/nimbus.js imports it)
const MAIN = fileURLToPath(new URL('../../cli/nimbus.mjs', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let profile: string;
const server = new FakeServer();

/** The real CLI in a child process; async because the fake server lives in this process. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: dir, NIMBUS_PROFILE: profile, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      // No command may ever show a stack trace, whatever went wrong.
      assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, `stack trace in stderr: ${stderr}`);
      resolve({ code, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const address = s.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const login = () => cli(['login', '--url', server.url, '--account', 'admin'], { NIMBUS_PASSWORD: PASSWORD });

describe('nimbus CLI end to end (fake server)', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-cli-'));
    profile = join(dir, 'conf', 'profile.json');
    await server.start();
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--help explains the program, kinds and generated flags', async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    for (const s of ['login', 'host', 'cluster', 'job', 'Examples:', '--q state=Enabled', '--wait']) {
      assert.ok(top.stdout.includes(s), `top-level help lacks ${s}`);
    }
    const host = await cli(['host', '--help']);
    assert.equal(host.code, 0);
    for (const s of ['list', 'get', 'create', 'delete', 'enable', 'reconnect', 'tag', 'untag']) {
      assert.match(host.stdout, new RegExp(`\\n\\s+${s} `), `host help lacks ${s}`);
    }
    const create = await cli(['host', 'create', '--help']);
    assert.equal(create.code, 0);
    assert.match(create.stdout, /--cluster-uuid <uuid>\s+cluster to add the host to/);
    assert.match(create.stdout, /--cluster <name-or-uuid>/);
    assert.match(create.stdout, /--name <name>.*\[required\]/);
    assert.match(create.stdout, /--simulator-memory <size>/);
    assert.match(create.stdout, /--simulator-cpu <n>/);
    assert.match(
      (await cli(['cluster', 'create', '--help'])).stdout,
      /--hypervisor-type .*one of:\s+simulator/s,
    );
    assert.match((await cli(['host', 'list', '--help'])).stdout, /Conditions/);
    assert.match((await cli(['job', '--help'])).stdout, /wait \[options\] <uuid>/);
  });

  test('usage errors exit 2 before anything is sent', async () => {
    const before = server.requests.length;
    const unknown = await cli(['host', 'list', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    const missing = await cli(['host', 'create', '--name', 'h']);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /missing required options: --cluster-uuid \(or --cluster\), --management-ip/,
    );
    const bytes = await cli(['host', 'create', '--simulator-memory', 'lots']);
    assert.equal(bytes.code, 2);
    assert.match(bytes.stderr, /--simulator-memory/);
    const notLoggedIn = await cli(['host', 'list']);
    assert.equal(notLoggedIn.code, 2);
    assert.match(notLoggedIn.stderr, /not logged in.*nimbus login/);
    assert.equal(server.requests.length, before);
  });

  test('login: wrong password is refused, the right one writes a 0600 profile', async () => {
    const bad = await cli(['login', '--url', server.url, '--account', 'admin', '--password', 'nope']);
    assert.equal(bad.code, 1);
    // said once, and no advice to run the very command that just failed
    assert.equal(bad.stderr, 'error BAD_CREDENTIALS: wrong account, user or password\n');
    const noPassword = await cli(['login', '--url', server.url, '--account', 'admin']);
    assert.equal(noPassword.code, 2);
    assert.match(noPassword.stderr, /NIMBUS_PASSWORD/);

    const ok = await login();
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /logged in to http:\/\/127\.0\.0\.1:\d+ as admin/);
    assert.equal(statSync(profile).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'conf')).mode & 0o777, 0o700);
    const saved = JSON.parse(readFileSync(profile, 'utf8'));
    assert.equal(saved.url, server.url);
    assert.equal(saved.account, 'admin');
    assert.ok(server.tokens.has(saved.token));
    assert.equal(saved.expiresAt, '2099-01-01T00:00:00.000Z');
    assert.deepEqual(server.find('POST', '/v1/auth/login').at(-1)?.body, {
      account: 'admin',
      password: PASSWORD,
    });
  });

  test('list sends the query as given and prints table, json and yaml', async () => {
    const json = await cli([
      'cluster',
      'list',
      '--q',
      'state=Enabled',
      '-q',
      'zoneUuid=x',
      '--sort',
      '-name',
    ]);
    assert.equal(json.code, 0);
    const sent = server.find('GET', '/v1/clusters').at(-1);
    assert.deepEqual(sent?.query.getAll('q'), ['state=Enabled', 'zoneUuid=x']);
    assert.equal(sent?.query.get('sort'), '-name');
    assert.match(sent?.authorization ?? '', /^Bearer /);

    const page = await cli(['cluster', 'list', '--limit', '2', '--count', '-o', 'json']);
    assert.equal(page.code, 0);
    const parsed = JSON.parse(page.stdout);
    assert.equal(parsed.items.length, 2);
    assert.equal(parsed.total, 3);
    assert.equal(parsed.limit, 2);

    const table = await cli(['cluster', 'list', '--q', 'state=Enabled']);
    assert.equal(table.code, 0);
    // the zone by name, looked up once for the whole page
    assert.match(table.stdout, /uuid.*name.*hypervisorType.*state.*zone /);
    assert.match(table.stdout, new RegExp(`${CLUSTER}.*c1.*simulator.*Enabled.*z1`));
    assert.deepEqual(server.find('GET', '/v1/zones').at(-1)?.query.getAll('q'), [`uuid?=${ZONE}`]);

    const yaml = await cli(['zone', 'list', '-o', 'yaml']);
    assert.match(yaml.stdout, /^items:\n {2}- uuid: /);
    assert.equal((await cli(['zone', 'list', '--limit', 'ten'])).code, 2);
  });

  test('get resolves names through the list API and refuses ambiguous or unknown names', async () => {
    const got = await cli(['cluster', 'get', 'c1']);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /field.*value/);
    assert.match(got.stdout, new RegExp(`uuid\\s+│\\s+${CLUSTER}`));
    assert.deepEqual(server.find('GET', '/v1/clusters').at(-1)?.query.getAll('q'), ['name=c1']);
    assert.equal(server.find('GET', `/v1/clusters/${CLUSTER}`).length, 1);

    const before = server.requests.length;
    assert.equal((await cli(['cluster', 'get', CLUSTER, '-o', 'json'])).code, 0);
    assert.equal(server.requests.length, before + 1, 'a uuid is used without a lookup');

    const dup = await cli(['cluster', 'get', 'dup']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /error AMBIGUOUS_NAME: 2 clusters are named 'dup'/);
    const none = await cli(['cluster', 'get', 'nope']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /error NOT_FOUND: no cluster named 'nope'/);
    const gone = await cli(['host', 'get', '0190a0b0-0000-7000-8000-0000000000ff']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error HOST_NOT_FOUND: /m);
  });

  test('create without --wait prints the job; flags become the body', async () => {
    const args = ['host', 'create', '--name', 'h0', '--cluster', 'c1', '--management-ip', '10.0.0.10'];
    const r = await cli([...args, '--simulator-memory', '1.5G', '--simulator-cpu', '8']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^job [0-9a-f-]{36} Pending \(host\.create/);
    assert.match(r.stdout, /nimbus job wait /);
    assert.deepEqual(server.find('POST', '/v1/hosts').at(-1)?.body, {
      name: 'h0',
      clusterUuid: CLUSTER,
      managementIp: '10.0.0.10',
      simulatorCpu: 8,
      simulatorMemory: 1610612736,
    });
  });

  test('create --wait polls the job to Succeeded and prints the resource', async () => {
    const r = await cli([
      'host',
      'create',
      '--name',
      'h1',
      '--cluster-uuid',
      CLUSTER,
      '--management-ip',
      '10.0.0.11',
      '--simulator-memory',
      '64G',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const host = JSON.parse(r.stdout);
    assert.equal(host.name, 'h1');
    assert.equal(host.simulatorMemory, 64 * 1024 ** 3);
    assert.match(r.stderr, /host\.create Running 50% connecting/, 'progress lines when not a TTY');
    const job = [...server.jobs.values()].find(
      (j) => (j.script.at(-1)?.result as { name?: string })?.name === 'h1',
    );
    assert.ok(job && job.polls >= 2);
  });

  test('a failed job exits 1 with its code and cause on stderr; job wait reports it too', async () => {
    const r = await cli([
      'host',
      'create',
      '--name',
      'boom',
      '--cluster',
      'c1',
      '--management-ip',
      '10.0.0.99',
      '--wait',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error HOST_CONNECT_FAILED: cannot connect to the host$/m);
    assert.match(r.stderr, /caused by AGENT_UNREACHABLE: connect ECONNREFUSED/);
    assert.equal(r.stdout, '');
    const failed = [...server.jobs.entries()].find(([, j]) => j.script.at(-1)?.state === 'Failed');
    assert.ok(failed);
    const again = await cli(['job', 'wait', failed[0]]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /error HOST_CONNECT_FAILED/);
  });

  test('server validation errors list every bad field', async () => {
    const r = await cli(['host', 'create', '--name', 'x', '--cluster', 'c1', '--management-ip', 'not-an-ip']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^error INVALID_REQUEST: the request has 1 invalid field\n {2}- managementIp: must be an IPv4 address/m,
    );
  });

  test('actions, update, tags and delete go to their paths; names resolve', async () => {
    const enable = await cli(['host', 'enable', 'h1', '--wait']);
    assert.equal(enable.code, 0, enable.stderr);
    const h1 = server.rows.hosts?.find((h) => h.name === 'h1');
    assert.ok(h1);
    const path = `/v1/hosts/${String(h1.uuid)}`;
    assert.deepEqual(server.find('POST', `${path}/actions/enable`).at(-1)?.body, {});
    assert.match(enable.stdout, /name\s+│\s+h1/);

    assert.equal((await cli(['host', 'tag', 'h1', 'env=prod'])).code, 0);
    assert.deepEqual(server.find('POST', `${path}/tags`).at(-1)?.body, { key: 'env', value: 'prod' });
    assert.equal((await cli(['host', 'untag', 'h1', 'env'])).code, 0);
    assert.equal(server.find('DELETE', `${path}/tags/env`).length, 1);

    assert.equal((await cli(['host', 'update', 'h1', '--description', 'rack 4'])).code, 0);
    assert.deepEqual(server.find('PATCH', path).at(-1)?.body, { description: 'rack 4' });
    const nothing = await cli(['host', 'update', 'h1']);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to change/);

    const del = await cli(['host', 'delete', String(h1.uuid), '-o', 'json']);
    assert.equal(del.code, 0);
    assert.equal(JSON.parse(del.stdout).state, 'Pending');
    assert.equal(server.find('DELETE', path).length, 1);
  });

  test('401 and unreachable servers are explained, not dumped', async () => {
    const bad = await cli(['host', 'list'], { NIMBUS_TOKEN: 'not-a-token' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error UNAUTHENTICATED: missing, expired or revoked token/m);
    assert.match(bad.stderr, /nimbus login/);

    const url = `http://127.0.0.1:${await freePort()}`;
    const down = await cli(['zone', 'list'], { NIMBUS_URL: url });
    assert.equal(down.code, 1);
    assert.ok(
      down.stderr.includes(`cannot reach the Nimbus server at ${url} (connection refused)`),
      down.stderr,
    );
    assert.match(down.stderr, /nimbus login --url/);
  });

  test('health, whoami, then logout revokes the token and forgets it', async () => {
    const health = await cli(['health']);
    assert.equal(health.code, 0);
    assert.match(health.stdout, /status: ok/);
    const who = await cli(['whoami']);
    assert.match(who.stdout, /account: admin/);
    assert.match(who.stdout, /valid until 2099/);

    const token = JSON.parse(readFileSync(profile, 'utf8')).token;
    const out = await cli(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!server.tokens.has(token));
    const saved = JSON.parse(readFileSync(profile, 'utf8'));
    assert.equal(saved.token, undefined);
    assert.equal(saved.url, server.url);
    assert.equal(statSync(profile).mode & 0o777, 0o600);
    const before = server.requests.length;
    const after = await cli(['host', 'list']);
    assert.equal(after.code, 2);
    assert.match(after.stderr, /^error: not logged in \(no session\): run `nimbus login`$/m);
    assert.equal(server.requests.length, before, 'nothing is sent without a session');
  });
});
