/**
 * The driver port: how the control plane talks to a host, whatever implements it.
 * Drivers are chosen per hypervisor type in main.ts; nothing else picks an implementation.
 */
import type { AgentCommand, AgentRequest, AgentResponse } from '../contract/agent.js';
import { CloudError } from '../kernel/errors.js';

export interface HostAddress {
  uuid: string;
  managementIp: string;
  hypervisorType: string;
}

export interface HostDriver {
  send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>>;
}

export class DriverRegistry {
  constructor(private readonly byType: Record<string, HostDriver>) {}

  types(): string[] {
    return Object.keys(this.byType);
  }

  for(hypervisorType: string): HostDriver {
    const driver = this.byType[hypervisorType];
    if (!driver) {
      throw new CloudError(
        'Invalid',
        'HYPERVISOR_UNSUPPORTED',
        `no driver for hypervisor type ${hypervisorType}`,
        {
          details: { hypervisorType, supported: this.types() },
        },
      );
    }
    return driver;
  }

  send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    return this.for(host.hypervisorType).send(host, command, request);
  }
}
