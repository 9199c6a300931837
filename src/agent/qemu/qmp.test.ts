// The QMP client against a real QEMU with no machine (no guest, starts in milliseconds):
// greeting, commands with ids, errors, events, and the socket closing under a pending command.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CloudError } from '../../kernel/errors.js';
import { Qmp } from './qmp.js';

const hasQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const skip = hasQemu ? false : 'qemu-system-x86_64 is not installed';

let dir = '';
let qemu: ChildProcess | undefined;
let sock = '';

async function waitFor(path: string): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
}

before(async () => {
  if (!hasQemu) return;
  dir = mkdtempSync(join(tmpdir(), 'nimbus-qmp-'));
  sock = join(dir, 'qmp.sock');
  qemu = spawn(
    'qemu-system-x86_64',
    ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`],
    { stdio: 'ignore' },
  );
  await waitFor(sock);
});

after(() => {
  if (qemu?.pid !== undefined && qemu.exitCode === null) process.kill(qemu.pid, 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('QMP: commands are answered by id, errors become QmpError, events reach listeners', {
  skip,
}, async () => {
  const qmp = await Qmp.connect(sock, 5000);
  try {
    const [a, b] = await Promise.all([
      qmp.execute<{ status: string }>('query-status'),
      qmp.execute<{ qemu: { major: number } }>('query-version'),
    ]);
    assert.equal(typeof a.status, 'string');
    assert.equal(b.qemu.major >= 5, true);
    await assert.rejects(qmp.execute('no-such-command'), (err: unknown) => {
      assert.ok(err instanceof CloudError);
      assert.equal(err.code, 'AGENT_QMP_ERROR');
      assert.equal(err.details?.class, 'CommandNotFound');
      return true;
    });
    const stopped = qmp.waitEvent('STOP', 5000);
    await qmp.execute('stop');
    assert.equal((await stopped).event, 'STOP');
    assert.equal((await qmp.execute<{ status: string }>('query-status')).status, 'paused');
    const resumed = qmp.waitEvent('RESUME', 5000);
    await qmp.execute('cont');
    await resumed;
    await assert.rejects(qmp.waitEvent('NEVER', 50), /no NEVER event in 50 ms/);
  } finally {
    qmp.close();
  }
});

test('QMP: a command pending when QEMU exits is rejected, and later ones too', { skip }, async () => {
  const qmp = await Qmp.connect(sock, 5000);
  const closed = new Promise<void>((resolve) => qmp.once('close', resolve));
  await qmp.execute('quit').catch(() => undefined);
  await closed;
  assert.equal(qmp.closed, true);
  await assert.rejects(qmp.execute('query-status'), /QMP closed before query-status/);
  await assert.rejects(Qmp.connect(sock, 1000), (err: unknown) => err instanceof CloudError);
});
