/**
 * Which fence a host gets: a simulated host is powered off by the simulator; a kvm host by its
 * BMC when it has IPMI credentials, otherwise it is trusted to fence itself (agent self-fencing).
 */
import type { FenceDriver } from './port.js';

export interface FenceDrivers {
  simulator: FenceDriver;
  ipmi: FenceDriver;
  agent: FenceDriver;
}

export function fenceDriverFor(
  drivers: FenceDrivers,
  host: { hypervisorType: string; hasIpmi: boolean },
): FenceDriver {
  if (host.hypervisorType === 'simulator') return drivers.simulator;
  return host.hasIpmi ? drivers.ipmi : drivers.agent;
}
