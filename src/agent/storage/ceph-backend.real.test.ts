// The ceph primary storage against a real Ceph cluster: one monitor and one bluestore-on-file OSD
// (auth none) in a network namespace of this test (notes/real-hosts.md §2.10), then
// ceph-scenario.ts run inside that namespace. Skipped (reason printed) without root, Ceph or
// qemu-img's rbd driver. Packages: ceph-mon ceph-osd ceph-common qemu-block-extra.
// The OSD takes about 1 GB of memory and a 2 GiB sparse file while it runs.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const hasRbdDriver =
  spawnSync('qemu-img', ['--help'], { encoding: 'utf8' }).stdout?.includes(' rbd ') ?? false;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespace)'
    : !hasRbdDriver
      ? 'qemu-img has no rbd driver (apt-get install qemu-utils qemu-block-extra)'
      : !['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/rbd', '/usr/bin/rados'].every((f) =>
            existsSync(f),
          )
        ? 'Ceph is not installed (apt-get install ceph-mon ceph-osd ceph-common)'
        : false;
if (skip) console.log(`# ceph storage real test skipped: ${skip}`);

const ns = `nimbus-ceph-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
let T = '';
let conf = '';
const daemons: ChildProcess[] = [];

function run(args: string[], timeoutMs = 30_000): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

/** A command inside the namespace, where the cluster is. */
const inNs = (args: string[], timeoutMs?: number) => run(['ip', 'netns', 'exec', ns, ...args], timeoutMs);

async function until(what: string, ok: () => boolean, ms = 60_000, alive?: ChildProcess): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (ok()) return;
    if (alive && alive.exitCode !== null)
      throw new Error(`${what} exited (${alive.exitCode}); see ${T}/*.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const succeeds = (args: string[]) => {
  try {
    inNs(args, 5000);
    return true;
  } catch {
    return false;
  }
};

before(
  async () => {
    if (skip) return;
    T = mkdtempSync(join(tmpdir(), 'nimbus-ceph-'));
    conf = join(T, 'ceph.conf');
    for (const d of ['mon', 'osd', 'run', 'work']) mkdirSync(join(T, d));
    const fsid = randomUUID();
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon_host = v1:127.0.0.1:6789
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = ${T}/run
admin_socket = ${T}/run/$name.asok
log_file = ${T}/$name.log
pid_file = ${T}/run/$name.pid
mon_data = ${T}/mon/$cluster-$id
osd_data = ${T}/osd/$cluster-$id
keyring = ${T}/$name.keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
ms_bind_ipv6 = false
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 2147483648
osd_memory_target = 939524096
bluestore_cache_size = 134217728
osd_class_update_on_start = false
osd_crush_update_on_start = false
`,
    );
    run(['ip', 'netns', 'add', ns]);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    run(['monmaptool', '--create', '--add', 'a', '127.0.0.1:6789', '--fsid', fsid, join(T, 'monmap')]);
    run([
      'ceph-authtool',
      '--create-keyring',
      join(T, 'mon.a.keyring'),
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    ]);
    run([
      'ceph-mon',
      '-c',
      conf,
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      join(T, 'monmap'),
      '--keyring',
      join(T, 'mon.a.keyring'),
    ]);
    // `ip netns exec` execs the daemon: these PIDs are the daemons' own
    daemons.push(
      spawn('ip', ['netns', 'exec', ns, 'ceph-mon', '-c', conf, '-i', 'a', '-f'], { stdio: 'ignore' }),
    );
    await until('the monitor', () => succeeds(['ceph', '-c', conf, 'mon', 'stat']));
    const uuid = randomUUID();
    const id = inNs(['ceph', '-c', conf, 'osd', 'new', uuid]).trim();
    // placed in the CRUSH map here, not by the OSD at start: its own start-up command races its
    // first monitor map and can be refused ('wrong fsid'), which stops the OSD
    inNs(['ceph', '-c', conf, 'osd', 'crush', 'add', `osd.${id}`, '1.0', 'root=default']);
    mkdirSync(join(T, `osd/ceph-${id}`));
    inNs(['ceph-osd', '-c', conf, '-i', id, '--mkfs', '--osd-uuid', uuid], 120_000);
    const osd = spawn('ip', ['netns', 'exec', ns, 'ceph-osd', '-c', conf, '-i', id, '-f'], {
      stdio: 'ignore',
    });
    daemons.push(osd);
    await until(
      'the OSD',
      () => {
        try {
          return inNs(['ceph', '-c', conf, 'osd', 'stat'], 5000).includes('1 up');
        } catch {
          return false;
        }
      },
      120_000,
      osd,
    );
    inNs(['ceph', '-c', conf, 'osd', 'pool', 'create', 'rbd', '8', '8']);
    inNs(['ceph', '-c', conf, 'osd', 'pool', 'application', 'enable', 'rbd', 'rbd']);
  },
  { timeout: 300_000 },
);

after(async () => {
  if (!T) return;
  for (const d of daemons) {
    if (d.pid !== undefined && d.exitCode === null) {
      try {
        process.kill(d.pid, 'SIGTERM');
      } catch {}
    }
  }
  // ceph-osd takes a few seconds to stop; anything left in the namespace is ours
  for (let round = 0; round < 100; round++) {
    const left = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.trim() ?? '';
    if (!left) break;
    for (const pid of left.split('\n').map(Number)) {
      try {
        process.kill(pid, round < 60 ? 'SIGTERM' : 'SIGKILL');
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  spawnSync('ip', ['netns', 'del', ns]);
  rmSync(T, { recursive: true, force: true });
});

test('ceph primary storage through a 1-mon 1-OSD cluster (scenario run inside its namespace)', {
  skip,
  timeout: 400_000,
}, () => {
  const scenario = join(dirname(fileURLToPath(import.meta.url)), 'ceph-scenario.js');
  // without the runner's context variable the child reports in plain text, not to this runner
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--test-reporter=spec', scenario], {
    encoding: 'utf8',
    env: { ...env, NIMBUS_CEPH_CONF: conf, NIMBUS_CEPH_WORK: join(T, 'work') },
    timeout: 360_000,
  });
  const osdLog = join(T, 'osd.0.log');
  const tail = existsSync(osdLog) ? readFileSync(osdLog, 'utf8').slice(-1500) : '';
  assert.equal(r.status, 0, `scenario failed:\n${r.stdout}\n${r.stderr}\n--- osd.0.log (tail)\n${tail}`);
  console.log(r.stdout);
});
