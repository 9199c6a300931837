/**
 * The test guest: a Debian kernel with a busybox initramfs, packed on a bootable disk image
 * (FAT "superfloppy" + syslinux, converted to qcow2), so a VM boots it like any image: from its
 * disk, no -kernel flag. Built once and cached under $NIMBUS_GUEST_CACHE (default
 * /var/cache/nimbus-test-guest) in a folder named by a hash of the recipe; builders racing each
 * other each build in a temp dir and rename it into place, so a reader never sees half a cache.
 *
 * The guest's /init (serial console markers; tests wait for them):
 *   NIMBUS-GUEST-BOOTED uptime=…          once, first thing
 *   NIMBUS-CONFIG-DRIVE hostname=…        when a config-2 drive (vfat/iso9660) was found
 *   NIMBUS-USERDATA-RAN rc=…              after running user_data that starts with #!
 *   NIMBUS-DHCP-OK ip=… mac=… iface=…     per NIC, when udhcpc got a lease (it keeps renewing)
 *   NIMBUS-DISKS vda:<sectors> vdb:…      at start and whenever a disk appears, goes or changes size
 *   NIMBUS-NICS eth0:<mac> …              at start and whenever a NIC appears or goes (new ones get DHCP)
 *   NIMBUS-ACPI-POWERDOWN                 on the ACPI power button, then poweroff -f
 * and serves http on port 80 (a page naming its hostname and addresses); it answers ping.
 * apt packages: busybox-static, cpio, dosfstools, mtools, syslinux, syslinux-common, qemu-utils
 * (and the kernel .deb fetched with apt-get download).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GuestImage {
  /** qcow2 disk that boots by itself (syslinux on FAT) */
  disk: string;
  kernel: string;
  initrd: string;
  dir: string;
}

const MODULES = [
  'virtio',
  'virtio_ring',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_blk',
  'evdev',
  'button',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'fat',
  'vfat',
  'cdrom',
  'isofs',
];

const INIT = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
say() { echo "$*" > /dev/console; }
say "NIMBUS-GUEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
for pass in 1 2; do for m in ${MODULES.join(' ')}; do insmod /lib/modules/$m.ko 2>/dev/null; done; done
sleep 0.3
ip link set lo up
acpid -c /etc/acpi -l /dev/null
HOSTNAME=nimbus-guest
mkdir -p /mnt/cd /www
for d in /sys/block/vd*; do
  dev=/dev/$(basename $d)
  mount -t vfat -o ro $dev /mnt/cd 2>/dev/null || mount -t iso9660 -o ro $dev /mnt/cd 2>/dev/null || continue
  if [ -f /mnt/cd/openstack/latest/meta_data.json ]; then
    h=$(sed -n 's/.*"hostname": *"\\([^"]*\\)".*/\\1/p' /mnt/cd/openstack/latest/meta_data.json)
    [ -n "$h" ] && HOSTNAME=$h
    say "NIMBUS-CONFIG-DRIVE hostname=$HOSTNAME dev=$dev"
    if [ -f /mnt/cd/openstack/latest/user_data ] && [ "$(head -c 2 /mnt/cd/openstack/latest/user_data)" = '#!' ]; then
      cp /mnt/cd/openstack/latest/user_data /tmp/user-data; chmod +x /tmp/user-data
      USERDATA=1
    fi
    break
  fi
  umount /mnt/cd
done
hostname "$HOSTNAME"
echo "$HOSTNAME" > /etc/hostname
echo "<html><body>nimbus-guest $HOSTNAME</body></html>" > /www/index.html
httpd -p 80 -h /www
# DHCP on every NIC, hot-plugged ones too (checked every second with the disks)
started=" "
dhcp_all() {
  keep=" "
  for n in $started; do [ -e /sys/class/net/$n ] && keep="$keep$n "; done
  started="$keep"
  for i in /sys/class/net/eth*; do
    [ -e "$i" ] || continue
    n=$(basename $i)
    case "$started" in *" $n "*) continue ;; esac
    started="$started$n "
    ip link set $n up
    udhcpc -i $n -b -t 10 -T 1 -A 2 -x hostname:$HOSTNAME -s /usr/share/udhcpc/default.script >/dev/null 2>&1
  done
}
dhcp_all
if [ -n "$USERDATA" ]; then (/tmp/user-data > /dev/console 2>&1; say "NIMBUS-USERDATA-RAN rc=$?") & fi
last=""
lastnics=""
while true; do
  now="$(for d in /sys/block/vd*; do [ -e $d ] && echo -n "$(basename $d):$(cat $d/size) "; done)"
  if [ "$now" != "$last" ]; then say "NIMBUS-DISKS $now"; last="$now"; fi
  nics="$(for i in /sys/class/net/eth*; do [ -e $i ] && echo -n "$(basename $i):$(cat $i/address) "; done)"
  if [ "$nics" != "$lastnics" ]; then say "NIMBUS-NICS $nics"; lastnics="$nics"; fi
  dhcp_all
  sleep 1
done
`;

const DHCP_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev $interface; ip link set $interface up ;;
  bound|renew)
    ip addr flush dev $interface
    ip addr add $ip/\${mask:-24} dev $interface
    [ -n "$router" ] && ip route replace default via \${router%% *} dev $interface
    mac=$(cat /sys/class/net/$interface/address)
    echo "<html><body>nimbus-guest $(hostname) $ip</body></html>" > /www/index.html
    echo "NIMBUS-DHCP-OK ip=$ip mac=$mac iface=$interface router=$router" > /dev/console ;;
esac
exit 0
`;

const POWER_BUTTON = `#!/bin/sh
echo "NIMBUS-ACPI-POWERDOWN" > /dev/console
poweroff -f
`;

const SYSLINUX_CFG = `DEFAULT nimbus
PROMPT 0
TIMEOUT 0
LABEL nimbus
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND console=ttyS0 panic=-1 loglevel=4
`;

async function kernelPackage(): Promise<string> {
  const { stdout } = await run('apt-cache', ['depends', 'linux-image-amd64']);
  const name = /Depends: (linux-image-\S+)/.exec(stdout)?.[1];
  if (name === undefined) throw new Error('apt-cache names no kernel package for linux-image-amd64');
  return name;
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = await findFile(path, name);
      if (found !== undefined) return found;
    } else if (entry.name === name) return path;
  }
  return undefined;
}

async function build(tmp: string, pkg: string): Promise<void> {
  const sh = (script: string) => run('sh', ['-ec', script], { cwd: tmp, maxBuffer: 16 * 1024 * 1024 });
  await sh(`apt-get download ${pkg} >/dev/null 2>&1 && dpkg -x ${pkg}_*.deb kpkg && rm ${pkg}_*.deb`);
  await sh('cp kpkg/boot/vmlinuz-* vmlinuz');
  const root = join(tmp, 'initrd');
  for (const d of [
    'bin',
    'sbin',
    'etc/acpi/PWRF',
    'proc',
    'sys',
    'dev',
    'tmp',
    'mnt',
    'lib/modules',
    'usr/share/udhcpc',
  ]) {
    await mkdir(join(root, d), { recursive: true });
  }
  await copyFile('/bin/busybox', join(root, 'bin/busybox'));
  const { stdout: applets } = await run('/bin/busybox', ['--list']);
  for (const applet of applets.split('\n').filter((a) => a.length > 0 && a !== 'busybox')) {
    await symlink('busybox', join(root, 'bin', applet));
  }
  for (const m of MODULES) {
    const ko = await findFile(join(tmp, 'kpkg/lib/modules'), `${m}.ko`);
    if (ko === undefined) throw new Error(`kernel ${pkg} has no module ${m}.ko`);
    await copyFile(ko, join(root, 'lib/modules', `${m}.ko`));
  }
  const files: Array<[string, string]> = [
    ['init', INIT],
    ['usr/share/udhcpc/default.script', DHCP_SCRIPT],
    ['etc/acpi/PWRF/00000080', POWER_BUTTON],
  ];
  for (const [path, text] of files) {
    await writeFile(join(root, path), text);
    await chmod(join(root, path), 0o755);
  }
  await sh('(cd initrd && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > initrd.img');
  await writeFile(join(tmp, 'syslinux.cfg'), SYSLINUX_CFG);
  // 64 MiB of FAT: kernel (8 MiB) + initramfs (about 1.5 MiB) with room to spare.
  await sh(
    [
      'mkfs.vfat -n NIMBUSBOOT -C boot.raw 65536 >/dev/null',
      'mcopy -i boot.raw vmlinuz initrd.img syslinux.cfg ::/',
      'syslinux --install boot.raw',
      'qemu-img convert -f raw -O qcow2 boot.raw disk.qcow2',
      'rm -rf boot.raw kpkg initrd',
    ].join(' && '),
  );
}

/** The cached guest, built first if needed (about 10 s; needs root for nothing but apt's cache). */
export async function ensureGuestImage(): Promise<GuestImage> {
  const cache = process.env.NIMBUS_GUEST_CACHE ?? '/var/cache/nimbus-test-guest';
  const pkg = await kernelPackage();
  const { stdout: busybox } = await run('/bin/busybox', ['--help']).catch(() => ({ stdout: 'no busybox' }));
  const recipe = [
    pkg,
    busybox.split('\n')[0],
    MODULES.join(','),
    INIT,
    DHCP_SCRIPT,
    POWER_BUTTON,
    SYSLINUX_CFG,
  ];
  const key = createHash('sha256').update(recipe.join('\0')).digest('hex').slice(0, 16);
  const dir = join(cache, key);
  const image = {
    dir,
    disk: join(dir, 'disk.qcow2'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
  };
  if (existsSync(image.disk)) return image;
  await mkdir(cache, { recursive: true });
  const tmp = await mkdtemp(join(cache, `.build-${key}-`));
  try {
    await build(tmp, pkg);
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another builder won the race: its image is as good as ours.
      if (!existsSync(image.disk)) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return image;
}
