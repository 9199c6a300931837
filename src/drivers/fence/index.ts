/**
 * Fence drivers (host HA): the port (port.ts), the choice per host (registry.ts) and the three
 * implementations — simulator.ts (power the simulated machine off), ipmi.ts (`ipmitool`),
 * agent-self-fence.ts (the agent kills its own guests; the management side waits it out).
 */
export type { FenceDriver, FenceMethod, FenceOutcome, FenceTarget, IpmiCredentials } from './port.js';
export { type FenceDrivers, fenceDriverFor } from './registry.js';
