/**
 * Fencing a simulated host: its machine is powered off (it answers nothing and its VMs are gone,
 * as a real machine's BMC would make it). Fault injection: the point `command:fence` (optionally
 * for one host address) makes the fence fail or slow down, as a BMC that does not answer would.
 */
import type { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import type { Simulator } from '../simulator/simulator.js';
import type { FenceDriver, FenceOutcome, FenceTarget } from './port.js';

export const SIMULATOR_FENCE_FAULT = 'command:fence';

export class SimulatorFence implements FenceDriver {
  readonly method = 'simulator' as const;

  constructor(
    private readonly simulator: Simulator,
    private readonly faults: FaultRegistry,
  ) {}

  async fence(target: FenceTarget): Promise<FenceOutcome> {
    await this.faults.check(SIMULATOR_FENCE_FAULT, target.managementIp);
    if (!(await this.simulator.setPower(target.managementIp, false)))
      throw new CloudError(
        'Unavailable',
        'HOST_FENCE_FAILED',
        `no simulated machine at ${target.managementIp} to power off`,
        { details: { address: target.managementIp }, retryable: true },
      );
    return {
      state: 'fenced',
      method: this.method,
      detail: `simulated machine ${target.managementIp} powered off`,
    };
  }
}
