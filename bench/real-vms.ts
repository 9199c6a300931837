/**
 * npm run bench:real-vms -- [--vms 20] [--parallel 2]
 *
 * Real guests through the whole platform: two nimbus-agent "hosts" (network namespaces on an
 * underlay, test/real/support/kvm-lab.ts), a management node, a flat VXLAN L3. Creates N VMs
 * (`--parallel` at a time, alternating hosts; the machine has 2 cores, so 2 by default) and for
 * each measures the time from the create request to the guest's DHCP lease (the serial log's
 * `NIMBUS-DHCP-OK`, whose address must be the one Nimbus allocated), then the agent's and QEMU's
 * resident memory while it runs; then destroys and expunges it. Printed beside a reference
 * measured in the same run: one bare `qemu-system-x86_64` TCG boot of the same image, with QEMU's
 * own user-mode network and DHCP, from process start to the same marker. Needs root and QEMU.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addHost,
  buildCloud,
  flatVxlanL3,
  guestImageUrl,
  nicOf,
  ok,
  vmOf,
  waitSerial,
} from '../test/real/support/cloud.js';
import { KvmLab, type LabHost, sh, skipReason } from '../test/real/support/kvm-lab.js';
import { ensureGuestImage } from '../test/support/guest-image.js';
import { startTestNode } from '../test/support/node.js';
import { flags, machine, ms, percentiles } from './lib.js';

const f = flags({ vms: { type: 'string', default: '20' }, parallel: { type: 'string', default: '2' } });
const N = Number(f.vms);
const P = Number(f.parallel);

function rssKiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

/** one bare QEMU TCG boot of the image (a throw-away overlay), user-mode network: ms to the lease */
async function referenceBoot(dir: string): Promise<number> {
  const guest = await ensureGuestImage();
  const overlay = join(dir, 'ref.qcow2');
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', guest.disk, '-F', 'qcow2', overlay]);
  const serial = join(dir, 'ref.serial');
  const started = Date.now();
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-m',
      '256',
      '-smp',
      '1',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-serial',
      `file:${serial}`,
      '-drive',
      `file=${overlay},format=qcow2,if=virtio`,
      '-netdev',
      'user,id=n0,restrict=on',
      '-device',
      'virtio-net-pci,netdev=n0',
    ],
    { stdio: 'ignore' },
  );
  try {
    for (;;) {
      if (existsSync(serial) && /NIMBUS-DHCP-OK ip=/.test(readFileSync(serial, 'utf8')))
        return Date.now() - started;
      if (qemu.exitCode !== null) throw new Error(`reference QEMU exited: ${readFileSync(serial, 'utf8')}`);
      if (Date.now() - started > 300_000) throw new Error('reference boot took more than 5 min');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    qemu.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const skip = skipReason();
  if (skip) {
    console.error(`bench:real-vms cannot run here: ${skip}`);
    process.exit(2);
  }
  process.env.NIMBUS_SETTINGS = JSON.stringify({ reconcileIntervalSeconds: 10 });
  const lab = new KvmLab();
  const t = await (async () => {
    const hosts = [lab.addHost(), lab.addHost()];
    for (const h of hosts) await h.startAgent();
    return startTestNode();
  })();
  let closeImage = () => {};
  try {
    const refMs = await referenceBoot(lab.subdir('ref'));
    const image = await guestImageUrl(lab);
    closeImage = () => image.server.close();
    const cloud = await buildCloud(t, lab, image.url);
    for (const h of lab.hosts) {
      const job = await addHost(t, cloud, h, lab.secret);
      if (job.state !== 'Succeeded') throw new Error(JSON.stringify(job.error));
    }
    const net = await flatVxlanL3(t, lab, cloud, 6000 + Math.floor(Math.random() * 3000) * 10);
    const agentIdle = lab.hosts.map((h) => rssKiB(h.pid));
    const leaseMs: number[] = [];
    const qemuRss: number[] = [];
    const agentBusy: number[] = [];
    let next = 0;
    const one = async (i: number) => {
      const host: LabHost = lab.hosts[i % lab.hosts.length]!;
      const started = Date.now();
      const job = await ok(t.admin, 'POST', '/v1/vms', {
        name: `bench-${lab.tag}-${i}`,
        imageUuid: cloud.image,
        instanceOfferingUuid: cloud.offering,
        l3NetworkUuids: [net.l3],
        hostUuid: cloud.hosts.get(host),
      });
      const uuid = job.resourceUuid as string;
      const lease = await waitSerial(host, uuid, /NIMBUS-DHCP-OK ip=(\S+)/, 0, 600_000);
      leaseMs.push(Date.now() - started);
      const nic = await nicOf(t.admin, uuid);
      if (lease[1] !== nic.ip) throw new Error(`vm ${uuid} leased ${lease[1]}, Nimbus allocated ${nic.ip}`);
      qemuRss.push(rssKiB(host.qemuPid(uuid)));
      agentBusy.push(rssKiB(host.pid));
      if ((await vmOf(t.admin, uuid)).state !== 'Running') throw new Error(`vm ${uuid} not Running`);
      await ok(t.admin, 'DELETE', `/v1/vms/${uuid}`);
      await ok(t.admin, 'POST', `/v1/vms/${uuid}/actions/expunge`, {});
      console.log(`  vm ${i + 1}/${N}: lease after ${ms(leaseMs.at(-1)!)}`);
    };
    await Promise.all(
      Array.from({ length: Math.min(P, N) }, async () => {
        for (let i = next++; i < N; i = next++) await one(i);
      }),
    );
    const p = percentiles(leaseMs);
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    console.log(`\nbench:real-vms — ${new Date().toISOString()} — ${machine()}`);
    console.log(`${N} VMs on 2 agent hosts, ${P} at a time, TCG, 1 vCPU / 256 MiB each, flat VXLAN L3`);
    console.log(`create → guest DHCP lease: p50 ${ms(p.p50)}, p95 ${ms(p.p95)}, max ${ms(p.max)}`);
    console.log(
      `reference (same run): bare qemu-system-x86_64 TCG boot to the lease, user-mode net: ${ms(refMs)}`,
    );
    console.log(
      `memory: QEMU RSS per VM avg ${mib(avg(qemuRss))} (max ${mib(Math.max(...qemuRss))}); agent RSS idle ${agentIdle.map(mib).join(' / ')}, with a guest ${mib(avg(agentBusy))} avg`,
    );
  } finally {
    closeImage();
    await t.stop().catch(() => {});
    await lab.destroy();
  }
}

await main();
