/**
 * The simulator's serial log: a simulated host runs no guest, so it has no serial console to
 * record. It writes instead a synthetic boot log per VM — a few kernel-style lines at each start
 * and reboot, naming the host, the VM's size and whether it was given user-data — kept in
 * `simulator_vms.serial_log` (0024), only its last SIM_SERIAL_KEEP characters, so the serial-log
 * route, the console page and the conformance suite have a log to read, as from a real host. It
 * says nothing about a guest: nothing booted.
 */
import type { VmSpec } from '../../contract/agent.js';

/** what the simulator keeps of a VM's log, in characters */
export const SIM_SERIAL_KEEP = 64 * 1024;

export function simulatedBootLog(
  vm: Pick<VmSpec, 'uuid' | 'cpu' | 'memory'> & { userData?: string },
  hostAddress: string,
  event: 'start' | 'reboot',
  at = new Date(),
): string {
  const lines = [
    `[    0.000000] nimbus simulator: ${event} of VM ${vm.uuid} on host ${hostAddress} at ${at.toISOString()} (synthetic log: no guest ran)`,
    '[    0.000000] Command line: console=ttyS0',
    `[    0.010000] smpboot: Allowing ${vm.cpu} CPUs`,
    `[    0.020000] Memory: ${Math.floor(vm.memory / 1024)}K available`,
    `[    1.000000] cloud-init: config drive ${vm.userData !== undefined ? `with user-data (${Buffer.byteLength(vm.userData)} bytes)` : 'without user-data'}`,
    `[    2.000000] login: vm-${vm.uuid.slice(0, 8)} ready`,
  ];
  return `${lines.join('\n')}\n`;
}
