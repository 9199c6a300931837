/**
 * scripts/install-agent.sh on this machine, kept apart from it: the script runs in a private
 * mount namespace (an overlay on /etc, tmpfs on /usr/local/lib and /var/lib) inside a network
 * namespace of the test's own, with --no-apt (the packages are installed here already). It must
 * write a 0600 random secret, install the bundle, print how to run the agent (no systemd here)
 * and the exact `nimbus host create` line; the agent started as printed answers host.connect
 * with that secret, and only with it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AGENT_BUNDLE, sh, skipReason, waitFor } from './support/kvm-lab.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'install-agent.sh');
const tag = randomBytes(2).toString('hex');
const ns = `nki${tag}`;
const dir = mkdtempSync(join(tmpdir(), `nimbus-install-${tag}-`));
let agentPid = 0;

after(() => {
  if (agentPid) {
    try {
      process.kill(agentPid, 'SIGKILL');
    } catch {}
  }
  for (const p of sh('ip', ['netns', 'pids', ns], { allowFail: true }).split('\n').map(Number)) {
    if (p > 1) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
  }
  sh('ip', ['netns', 'del', ns], { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
});

test('install-agent.sh installs the agent with a private secret and prints the host create line', {
  skip: skipReason(),
}, async () => {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  for (const d of ['upper', 'work']) mkdirSync(join(dir, d));
  const port = 17000 + Math.floor(Math.random() * 1000);
  // everything the script writes lands in this private view of the filesystem
  const inner = [
    'set -e',
    'mount --make-rprivate /',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/work /etc`,
    'mount -t tmpfs tmpfs /usr/local/lib',
    'mount -t tmpfs tmpfs /var/lib',
    `sh ${SCRIPT} --no-apt --bundle ${AGENT_BUNDLE} --port ${port} --management-ip 127.0.0.1 --cluster kvm-1 > ${dir}/out.txt 2>&1`,
    'stat -c %a /etc/nimbus-agent/secret > ' + `${dir}/mode.txt`,
    `cp /etc/nimbus-agent/secret ${dir}/secret.copy`,
    // run the agent exactly as the script said (the line after "run it (as root) with")
    `cmd=$(sed -n 's/^  nohup \\(.*\\) >>\\/var\\/log\\/nimbus-agent.log 2>&1 &$/\\1/p' ${dir}/out.txt)`,
    `[ -n "$cmd" ] || { echo "no run line"; exit 1; }`,
    `exec $cmd > ${dir}/agent.log 2>&1`,
  ].join('\n');
  writeFileSync(join(dir, 'inner.sh'), inner);
  const child = spawn('ip', ['netns', 'exec', ns, 'unshare', '--mount', 'sh', join(dir, 'inner.sh')], {
    stdio: 'ignore',
  });
  agentPid = child.pid ?? 0;
  await waitFor(
    'the agent to listen',
    () => {
      const log = (() => {
        try {
          return readFileSync(join(dir, 'agent.log'), 'utf8');
        } catch {
          return '';
        }
      })();
      if (child.exitCode !== null)
        throw new Error(`install failed: ${readFileSync(join(dir, 'out.txt'), 'utf8')}`);
      return log.includes('nimbus-agent listening') ? true : undefined;
    },
    30_000,
  );
  const out = readFileSync(join(dir, 'out.txt'), 'utf8');
  const secret = readFileSync(join(dir, 'secret.copy'), 'utf8').trim();
  assert.match(secret, /^[0-9a-f]{64}$/, 'a random 256-bit secret');
  assert.equal(readFileSync(join(dir, 'mode.txt'), 'utf8').trim(), '600');
  assert.ok(out.includes('no systemd here'), out);
  assert.ok(
    out.includes(
      `nimbus host create --name ${sh('hostname', []).trim()} --cluster kvm-1 --management-ip 127.0.0.1 --agent-secret ${secret} --agent-port ${port} --wait`,
    ),
    out,
  );
  const call = (bearer: string) =>
    spawnSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'POST',
        '-H',
        `authorization: Bearer ${bearer}`,
        '--data',
        '{}',
        `http://127.0.0.1:${port}/v1/commands/host.connect`,
      ],
      { encoding: 'utf8' },
    ).stdout;
  assert.equal(call(secret), '200');
  assert.equal(call('wrong-secret-wrong-secret'), '401');
});
