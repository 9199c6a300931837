/**
 * The QEMU part of nimbus-agent: the vm.* commands (and the peer command vm.prepare-migration)
 * on QEMU processes driven over QMP. Files: command-line.ts (the machine from a VmSpec),
 * blockdev.ts (device and node names, PCI slots), process.ts (pids, launch, kill),
 * hypervisor.ts (the VMs of this host, one operation at a time per VM), devices.ts (hot-plug),
 * migration.ts, config-drive.ts, live-disks.ts (the storage part's hooks), qmp.ts.
 * A VM's files: `<state-dir>/vms/<uuid>/` — spec.json, qemu.pid, qmp.sock, serial.log,
 * vnc.sock (the VNC console, a unix socket), config-drive.img, incoming.json.
 */
import type { AgentHandlers, AgentPeerHandlers } from '../handlers.js';
import type { Accelerator } from '../host/facts.js';
import { attachNic, attachVolume, detachNic, detachVolume, resizeVolume } from './devices.js';
import { type AgentLog, Hypervisor } from './hypervisor.js';
import { checkObject, checkString, checkVmUuid } from './layout.js';
import { liveDiskHooks } from './live-disks.js';
import { migrate, prepareMigration } from './migration.js';
import type { NicPlugger } from './nic-plugger.js';

export type { NicPlugger } from './nic-plugger.js';

export interface QemuPartOptions {
  stateDir: string;
  accelerator: Accelerator;
  plugger: NicPlugger;
  stopTimeoutMs: number;
  log: AgentLog;
  /** this agent's bearer secret: sent to the target agent of a live migration */
  secret: string;
  /** the address this agent listens on; a migration target listens for QEMU on it too */
  listenHost: string;
}

export interface QemuPart {
  handlers: AgentHandlers & AgentPeerHandlers;
  hypervisor: Hypervisor;
  live: ReturnType<typeof liveDiskHooks>;
  /** reconnects to the VMs still running from before the agent started */
  recover(): Promise<{ running: string[]; stopped: string[] }>;
}

const done = {} as Record<string, never>;

export function createQemuPart(opts: QemuPartOptions): QemuPart {
  const hv = new Hypervisor(opts);
  const running = async (uuid: string, command: string) => {
    await hv.execute(checkVmUuid(uuid), command);
    return done;
  };
  const handlers: AgentHandlers & AgentPeerHandlers = {
    'vm.start': async ({ vm }) => ({ powerState: await hv.start(checkObject(vm, 'vm')) }),
    'vm.stop': async ({ vmUuid, force }) => {
      await hv.stop(vmUuid, force === true);
      return done;
    },
    'vm.reboot': ({ vmUuid }) => running(vmUuid, 'system_reset'),
    'vm.pause': ({ vmUuid }) => running(vmUuid, 'stop'),
    'vm.resume': ({ vmUuid }) => running(vmUuid, 'cont'),
    'vm.destroy': async ({ vmUuid }) => {
      await hv.destroy(vmUuid);
      return done;
    },
    'vm.list': async () => ({ vms: await hv.list() }),
    'vm.serial-log': ({ vmUuid, tailBytes }) => hv.serialLog(vmUuid, tailBytes),
    'vm.attach-volume': async ({ vmUuid, volume }) => {
      await attachVolume(hv, checkVmUuid(vmUuid), checkObject(volume, 'volume'));
      return done;
    },
    'vm.detach-volume': async ({ vmUuid, volumeUuid }) => {
      await detachVolume(hv, checkVmUuid(vmUuid), checkString(volumeUuid, 'volumeUuid'));
      return done;
    },
    'vm.resize-volume': async ({ vmUuid, volumeUuid, size }) => {
      await resizeVolume(hv, checkVmUuid(vmUuid), checkString(volumeUuid, 'volumeUuid'), size);
      return done;
    },
    'vm.attach-nic': async ({ vmUuid, nic }) => {
      await attachNic(hv, checkVmUuid(vmUuid), checkObject(nic, 'nic'));
      return done;
    },
    'vm.detach-nic': async ({ vmUuid, nicUuid }) => {
      await detachNic(hv, checkVmUuid(vmUuid), checkString(nicUuid, 'nicUuid'));
      return done;
    },
    'vm.migrate': async ({ vmUuid, target, targetAgent }) => {
      // the target's own credential when the management node sends it (hosts need not share a secret)
      const authorization = targetAgent?.authorization ?? `Bearer ${opts.secret}`;
      await migrate(hv, checkVmUuid(vmUuid), checkString(target, 'target'), authorization);
      return done;
    },
    'vm.prepare-migration': ({ vm }) => {
      checkVmUuid(checkObject(vm, 'vm').uuid, 'vm.uuid');
      return prepareMigration(hv, vm, opts.listenHost);
    },
  };
  return { handlers, hypervisor: hv, live: liveDiskHooks(hv), recover: () => hv.recover() };
}
