/**
 * The shipped Keepalived configuration (deploy/keepalived/keepalived.conf, included as is) moves
 * the virtual IP between two "load balancer machines": network namespaces on one bridge (in a
 * namespace of its own), each running keepalived and a stand-in for its HAProxy (an HTTP server
 * on :8080 answering its name and /v1/health), with a client in a third namespace calling the
 * VIP. VRRP multicast between namespaces works here (verified by this test):
 *   1. the higher priority machine (a) takes the VIP; the client reaches a;
 *   2. a's load balancer dies: its health check fails twice, the VIP moves to b;
 *   3. a's load balancer comes back: a goes BACKUP and, `nopreempt`, leaves the VIP on b;
 *   4. b crashes (keepalived SIGKILLed, its link down): the VIP moves to a; the client reaches a.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CONFIG = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'deploy',
  'keepalived',
  'keepalived.conf',
);
const P = `kav${process.pid % 10000}`;
const VIP = '10.99.0.100';
const dir = mkdtempSync(join(tmpdir(), 'nimbus-keepalived-'));
const children: ChildProcess[] = [];

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const tool of ['ip', 'keepalived', 'curl'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `${tool} is missing (apt-get install keepalived)`;
  return false;
}

function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0 && !allowFail)
    throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout ?? '';
}

const ns = (n: string) => `${P}-${n}`;
const inNs = (n: string, cmd: string, args: string[], allowFail = false) =>
  sh('ip', ['netns', 'exec', ns(n), cmd, ...args], allowFail);

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const logs = () =>
  ['a', 'b']
    .map(
      (m) =>
        `--- keepalived ${m}:\n${readFileSync(join(dir, `${m}.log`), 'utf8')
          .split('\n')
          .slice(-15)
          .join('\n')}`,
    )
    .join('\n');

/** which machine holds the VIP on its interface (both, during a split, is a failure) */
function holders(): string[] {
  return ['a', 'b'].filter((m) => inNs(m, 'ip', ['-4', 'addr', 'show', 'eth0']).includes(`${VIP}/`));
}

/** what the client gets from the VIP (the name of the machine answering), or undefined */
function viaVip(): string | undefined {
  const out = inNs('c', 'curl', ['-s', '-m', '1', `http://${VIP}:8080/`], true).trim();
  return out === '' ? undefined : out;
}

function network(): void {
  for (const n of ['br', 'a', 'b', 'c']) sh('ip', ['netns', 'add', ns(n)]);
  sh('ip', ['-n', ns('br'), 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', ns('br'), 'link', 'set', 'br0', 'up']);
  ['a', 'b', 'c'].forEach((m, i) => {
    sh('ip', ['link', 'add', `${P}${m}`, 'type', 'veth', 'peer', 'name', `${P}${m}p`]);
    sh('ip', ['link', 'set', `${P}${m}`, 'netns', ns(m)]);
    sh('ip', ['link', 'set', `${P}${m}p`, 'netns', ns('br')]);
    sh('ip', ['-n', ns('br'), 'link', 'set', `${P}${m}p`, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns(m), 'link', 'set', `${P}${m}`, 'name', 'eth0']);
    sh('ip', ['-n', ns(m), 'addr', 'add', `10.99.0.${i + 1}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns(m), 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns(m), 'link', 'set', 'lo', 'up']);
  });
}

/** the stand-in for a machine's HAProxy: answers its name, and 200 on /v1/health */
function balancer(m: string): ChildProcess {
  const code = `require('http').createServer((q, s) => s.end(q.url === '/v1/health' ? 'ok' : '${m}')).listen(8080, '0.0.0.0')`;
  const child = spawn('ip', ['netns', 'exec', ns(m), process.execPath, '-e', code], { stdio: 'ignore' });
  children.push(child);
  return child;
}

function keepalived(m: string, priority: number): void {
  const conf = join(dir, `${m}.conf`);
  // the per-machine values, then the shipped file as is (as /etc/keepalived/keepalived.conf would)
  writeFileSync(
    conf,
    [
      `$NIMBUS_ROUTER_ID=lb-${m}`,
      '$NIMBUS_VRRP_INTERFACE=eth0',
      '$NIMBUS_VRID=51',
      `$NIMBUS_PRIORITY=${priority}`,
      '$NIMBUS_VRRP_PASS=nimbus01',
      `$NIMBUS_VIP=${VIP}/24`,
      '$NIMBUS_HEALTH_CHECK=/usr/bin/curl -fsS -m 2 -o /dev/null http://127.0.0.1:8080/v1/health',
      `include ${CONFIG}`,
      '',
    ].join('\n'),
  );
  const out = join(dir, `${m}.log`);
  writeFileSync(out, '');
  const child = spawn(
    'sh',
    [
      '-c',
      `exec ip netns exec ${ns(m)} keepalived -f ${conf} -n -l -D -P -p ${dir}/${m}.pid -r ${dir}/${m}-vrrp.pid >> ${out} 2>&1`,
    ],
    { stdio: 'ignore' },
  );
  children.push(child);
}

/** keepalived's own processes of machine m (the parent and its VRRP child), by their pid files */
function keepalivedPids(m: string): number[] {
  return [`${m}.pid`, `${m}-vrrp.pid`].flatMap((f) => {
    try {
      return [Number(readFileSync(join(dir, f), 'utf8').trim())];
    } catch {
      return [];
    }
  });
}

const backups = (m: string) =>
  (readFileSync(join(dir, `${m}.log`), 'utf8').match(/Entering BACKUP STATE/g) ?? []).length;

after(() => {
  for (const m of ['a', 'b']) for (const pid of keepalivedPids(m)) sh('kill', ['-9', String(pid)], true);
  for (const c of children) c.kill('SIGKILL');
  for (const n of ['a', 'b', 'c', 'br']) sh('ip', ['netns', 'del', ns(n)], true);
  rmSync(dir, { recursive: true, force: true });
});

test('the VIP follows the healthy load balancer: health failure, no pre-emption, crash', {
  skip: skipReason(),
}, async () => {
  network();
  const lbA = balancer('a');
  balancer('b');
  keepalived('a', 150);
  keepalived('b', 100);

  await waitFor('a to hold the VIP', () => (holders().join() === 'a' ? true : undefined));
  assert.equal(await waitFor('the client to reach the VIP', viaVip), 'a');

  // a's load balancer dies: two failed health checks and a gives the VIP up
  lbA.kill('SIGKILL');
  await waitFor('the VIP on b', () => (holders().join() === 'b' ? true : undefined));
  assert.equal(await waitFor('the client to reach b', () => (viaVip() === 'b' ? 'b' : undefined)), 'b');

  // a is healthy again: it goes back to BACKUP and, nopreempt, leaves the VIP where it is
  const before = backups('a');
  balancer('a');
  await waitFor('a back in BACKUP', () => (backups('a') > before ? true : undefined));
  assert.deepEqual(holders(), ['b'], 'no fail-back');
  assert.equal(viaVip(), 'b');

  // b crashes: its keepalived is killed and its link goes down with it
  for (const pid of keepalivedPids('b')) sh('kill', ['-9', String(pid)]);
  sh('ip', ['-n', ns('b'), 'link', 'set', 'eth0', 'down']);
  await waitFor('the VIP on a', () => (holders().includes('a') ? true : undefined));
  assert.equal(await waitFor('the client to reach a', () => (viaVip() === 'a' ? 'a' : undefined)), 'a');
});
