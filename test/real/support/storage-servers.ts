/**
 * Test-only: shared primary storage for the real-host tests, served from a namespace of the lab
 * on the underlay, where the hosts (and the root namespace) reach it like a storage network:
 *
 *   - NFS: nfs-ganesha (FSAL_VFS) + rpcbind exporting a directory of the lab
 *     (notes/real-hosts.md §2.9). This kernel has no NFS client: QEMU and qemu-img use nfs://
 *     (libnfs), the agent its own NFSv3 client; the test reads the exported directory directly.
 *   - Ceph: one monitor and one bluestore-on-file OSD, pool `rbd` (§2.10), with cephx: the
 *     primary storage's url names the cluster's ceph.conf and the user `nimbus` (caps: profile
 *     rbd on the pool), whose key is in the keyring file ceph.conf names — as on real hosts,
 *     where /etc/ceph holds both: Nimbus never sees the key. Clients (the agents' rbd/rados,
 *     QEMU's rbd driver) read them from the lab; the test itself uses client.admin.
 *
 * Everything started here runs in the server's namespace, so `KvmLab.destroy()` ends it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KvmLab, sh, waitFor } from './kvm-lab.js';

/** why the shared-storage tests cannot run here, or false */
export function storageSkipReason(kind: 'nfs' | 'ceph'): string | false {
  const help = spawnSync('qemu-img', ['--help'], { encoding: 'utf8' }).stdout ?? '';
  if (kind === 'nfs') {
    if (!help.includes(' nfs ')) return 'qemu-img has no nfs driver (apt-get install qemu-block-extra)';
    if (!existsSync('/usr/bin/ganesha.nfsd') || !existsSync('/usr/sbin/rpcbind'))
      return 'nfs-ganesha/rpcbind are not installed (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)';
    return false;
  }
  if (!help.includes(' rbd ')) return 'qemu-img has no rbd driver (apt-get install qemu-block-extra)';
  if (!['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/rbd'].every((f) => existsSync(f)))
    return 'Ceph is not installed (apt-get install ceph-mon ceph-osd ceph-common)';
  return false;
}

function portOpen(ns: string, port: number): boolean {
  return (
    spawnSync('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0
  );
}

export interface NfsServer {
  ip: string;
  /** the exported directory, as this machine sees it */
  exportDir: string;
  /** the primary storage's url: nfs://<ip><export path> */
  url: string;
}

export async function startNfsServer(lab: KvmLab): Promise<NfsServer> {
  const { ns, ip } = lab.addServer('n');
  const dir = lab.subdir('nfs');
  const exportDir = join(dir, 'export');
  for (const d of [exportDir, join(dir, 'recov')]) mkdirSync(d, { recursive: true });
  writeFileSync(
    join(dir, 'ganesha.conf'),
    `NFS_CORE_PARAM { Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048; NLM_Port = 32803; Rquota_Port = 875; }
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = ${dir}/recov; }
EXPORT { Export_Id = 1; Path = ${exportDir}; Pseudo = /export; Access_Type = RW;
         Squash = No_Root_Squash; SecType = sys; Protocols = 3, 4; Transports = TCP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
`,
  );
  // a private mount namespace: rpcbind wants /run/rpcbind, which must not touch the host's /run
  const server = spawn(
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
        `exec ganesha.nfsd -F -f ${dir}/ganesha.conf -L ${dir}/ganesha.log -p ${dir}/ganesha.pid -N NIV_EVENT`,
    ],
    { stdio: 'ignore' },
  );
  lab.own(server.pid);
  await waitFor(
    'nfs-ganesha listening (2049, 20048)',
    () => (portOpen(ns, 2049) && portOpen(ns, 20048) ? true : undefined),
    60_000,
  );
  return { ip, exportDir, url: `nfs://${ip}${exportDir}` };
}

/** every file under the export (directories left out) */
export function filesOnExport(nfs: NfsServer): string[] {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((name) => {
      const p = join(d, name);
      return statSync(p).isDirectory() ? walk(p) : [p.slice(nfs.exportDir.length + 1)];
    });
  return walk(nfs.exportDir).sort();
}

export interface CephCluster {
  ip: string;
  conf: string;
  pool: string;
  /** the primary storage's url, in QEMU's syntax: rbd:<pool>:conf=<ceph.conf>:id=<user> */
  url: string;
  /** runs the rbd CLI against the cluster (from the root namespace, over the underlay) */
  rbd(args: string[]): string;
}

export async function startCeph(lab: KvmLab): Promise<CephCluster> {
  const { ns, ip } = lab.addServer('c');
  const T = lab.subdir('ceph');
  const conf = join(T, 'ceph.conf');
  for (const d of ['mon', 'osd', 'run']) mkdirSync(join(T, d), { recursive: true });
  const fsid = randomUUID();
  // daemons keep logs and sockets in the lab; clients (QEMU, rbd, rados, several at once during
  // a migration) get none: they would fight over one admin socket path
  writeFileSync(
    conf,
    `[global]
fsid = ${fsid}
mon_host = v1:${ip}:6789
public_addr = ${ip}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
run_dir = ${T}/run
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
[mon]
admin_socket = ${T}/run/$name.asok
log_file = ${T}/$name.log
[osd]
admin_socket = ${T}/run/$name.asok
log_file = ${T}/$name.log
[client]
admin_socket =
log_file = /dev/null
`,
  );
  const inNs = (args: string[], timeout = 60_000) => {
    const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message}`);
    return r.stdout;
  };
  sh('monmaptool', ['--create', '--add', 'a', `${ip}:6789`, '--fsid', fsid, join(T, 'monmap')]);
  // keyrings where ceph.conf's `keyring = <lab>/$name.keyring` finds them
  const keyring = (file: string, name: string, caps: string[]) =>
    sh('ceph-authtool', ['--create-keyring', join(T, file), '--gen-key', '-n', name, ...caps]);
  keyring('mon.a.keyring', 'mon.', ['--cap', 'mon', 'allow *']);
  keyring('client.admin.keyring', 'client.admin', [
    '--cap',
    'mon',
    'allow *',
    '--cap',
    'osd',
    'allow *',
    '--cap',
    'mgr',
    'allow *',
  ]);
  // the monitor starts knowing client.admin; every other key is made through it
  sh('ceph-authtool', [join(T, 'mon.a.keyring'), '--import-keyring', join(T, 'client.admin.keyring')]);
  sh('ceph-mon', [
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
  const daemon = (args: string[]): ChildProcess => {
    // `ip netns exec` execs the daemon: the PID is the daemon's own
    const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
    lab.own(child.pid);
    return child;
  };
  daemon(['ceph-mon', '-c', conf, '-i', 'a', '-f']);
  await waitFor(
    'the Ceph monitor',
    () => {
      try {
        inNs(['ceph', '-c', conf, 'mon', 'stat'], 5000);
        return true;
      } catch {
        return undefined;
      }
    },
    60_000,
  );
  const uuid = randomUUID();
  const id = inNs(['ceph', '-c', conf, 'osd', 'new', uuid]).trim();
  // placed in the CRUSH map here, not by the OSD at start (its own start-up command races its
  // first monitor map and can be refused with 'wrong fsid')
  inNs(['ceph', '-c', conf, 'osd', 'crush', 'add', `osd.${id}`, '1.0', 'root=default']);
  inNs([
    'ceph',
    '-c',
    conf,
    'auth',
    'get-or-create',
    `osd.${id}`,
    'mon',
    'allow profile osd',
    'osd',
    'allow *',
    '-o',
    join(T, `osd.${id}.keyring`),
  ]);
  mkdirSync(join(T, `osd/ceph-${id}`));
  inNs(['ceph-osd', '-c', conf, '-i', id, '--mkfs', '--osd-uuid', uuid], 180_000);
  const osd = daemon(['ceph-osd', '-c', conf, '-i', id, '-f']);
  await waitFor(
    'the Ceph OSD up',
    () => {
      if (osd.exitCode !== null) throw new Error(`ceph-osd exited ${osd.exitCode}; see ${T}/osd.${id}.log`);
      try {
        return inNs(['ceph', '-c', conf, 'osd', 'stat'], 5000).includes('1 up') ? true : undefined;
      } catch {
        return undefined;
      }
    },
    180_000,
  );
  inNs(['ceph', '-c', conf, 'osd', 'pool', 'create', 'rbd', '8', '8']);
  inNs(['ceph', '-c', conf, 'osd', 'pool', 'application', 'enable', 'rbd', 'rbd']);
  // the hosts' user: RBD on this pool only
  inNs([
    'ceph',
    '-c',
    conf,
    'auth',
    'get-or-create',
    'client.nimbus',
    'mon',
    'profile rbd',
    'osd',
    'profile rbd pool=rbd',
    '-o',
    join(T, 'client.nimbus.keyring'),
  ]);
  return {
    ip,
    conf,
    pool: 'rbd',
    url: `rbd:rbd:conf=${conf}:id=nimbus`,
    rbd: (args) => sh('rbd', ['--conf', conf, ...args]),
  };
}

/** the RBD images of the pool */
export function rbdImages(ceph: CephCluster): string[] {
  return (JSON.parse(ceph.rbd(['ls', '--format', 'json', ceph.pool])) as string[]).sort();
}
