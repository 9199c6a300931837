// The nfs primary storage against a real NFS server: nfs-ganesha (FSAL_VFS) + rpcbind in a network
// namespace of this test (the recipe of notes/real-hosts.md §2.9), then nfs-scenario.ts run inside
// that namespace. Skipped (reason printed) without root, qemu-img's NFS driver or ganesha.
// Packages: nfs-ganesha nfs-ganesha-vfs rpcbind qemu-block-extra (libnfs-utils is not needed).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const has = (cmd: string, args: string[]) => spawnSync(cmd, args).error === undefined;
const hasNfsDriver =
  spawnSync('qemu-img', ['--help'], { encoding: 'utf8' }).stdout?.includes(' nfs ') ?? false;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespace)'
    : !has('qemu-img', ['--version'])
      ? 'qemu-img is not installed (qemu-utils)'
      : !hasNfsDriver
        ? 'qemu-img has no nfs driver (apt-get install qemu-block-extra)'
        : !existsSync('/usr/bin/ganesha.nfsd') || !existsSync('/usr/sbin/rpcbind')
          ? 'nfs-ganesha/rpcbind are not installed (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)'
          : false;
if (skip) console.log(`# nfs storage real test skipped: ${skip}`);

const ns = `nimbus-nfs-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
let T = '';
let server: ChildProcess | undefined;

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

function pidsIn(namespace: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .filter((l) => l.trim())
    .map(Number);
}

async function portOpen(port: number): Promise<boolean> {
  // the probe runs inside the namespace: the server is only reachable there
  const r = spawnSync('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
  return r.status === 0;
}

before(async () => {
  if (skip) return;
  T = mkdtempSync(join(tmpdir(), 'nimbus-nfs-'));
  for (const d of ['export', 'recov', 'work']) mkdirSync(join(T, d));
  writeFileSync(
    join(T, 'ganesha.conf'),
    `NFS_CORE_PARAM { Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048; NLM_Port = 32803; Rquota_Port = 875; }
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = ${T}/recov; }
EXPORT { Export_Id = 1; Path = ${T}/export; Pseudo = /export; Access_Type = RW;
         Squash = No_Root_Squash; SecType = sys; Protocols = 3, 4; Transports = TCP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
`,
  );
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  // a private mount namespace: rpcbind wants /run/rpcbind, which must not touch the host's /run
  server = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'unshare',
      '--mount',
      'sh',
      '-c',
      `mount --make-rprivate /; mount -t tmpfs tmpfs /run; mkdir -p /run/rpcbind; rpcbind -f -w & sleep 0.3; ` +
        `exec ganesha.nfsd -F -f ${T}/ganesha.conf -L ${T}/ganesha.log -p ${T}/ganesha.pid -N NIV_EVENT`,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 150 && !((await portOpen(2049)) && (await portOpen(20048))); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (!T) return;
  // everything in the namespace was started by this test: ganesha, rpcbind, the shell
  for (let round = 0; round < 50; round++) {
    const pids = pidsIn(ns);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, round < 20 ? 'SIGTERM' : 'SIGKILL');
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (server?.pid !== undefined && server.exitCode === null) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {}
  }
  spawnSync('ip', ['netns', 'del', ns]);
  rmSync(T, { recursive: true, force: true });
});

test('nfs primary storage through nfs-ganesha (scenario run inside its namespace)', {
  skip,
  timeout: 240_000,
}, () => {
  const scenario = join(dirname(fileURLToPath(import.meta.url)), 'nfs-scenario.js');
  // without the runner's context variable the child reports in plain text, not to this runner
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--test-reporter=spec', scenario], {
    encoding: 'utf8',
    env: {
      ...env,
      NIMBUS_NFS_URL: `nfs://127.0.0.1${T}/export`,
      NIMBUS_NFS_DIR: join(T, 'export'),
      NIMBUS_NFS_WORK: join(T, 'work'),
    },
    timeout: 200_000,
  });
  const log = existsSync(join(T, 'ganesha.log'))
    ? readFileSync(join(T, 'ganesha.log'), 'utf8').slice(-2000)
    : '';
  assert.equal(r.status, 0, `scenario failed:\n${r.stdout}\n${r.stderr}\n--- ganesha.log (tail)\n${log}`);
  console.log(r.stdout);
});
