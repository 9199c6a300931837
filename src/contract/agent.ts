/**
 * The host command interface: what the management node asks of a host. The simulator answers
 * it in-process today; the KVM agent will answer the same commands over HTTP. Every command is
 * idempotent, and re-sync commands carry full desired state, never deltas.
 */

export interface HostFacts {
  hypervisorType: string;
  hypervisorVersion: string;
  hostname: string;
  cpuModel: string;
}

export interface HostCapacity {
  /** logical CPUs */
  cpu: number;
  /** bytes */
  memory: number;
}

export interface AgentCommands {
  /** open a session with the host and learn what it is */
  'host.connect': { request: Record<string, never>; response: HostFacts };
  /** what the host physically has */
  'host.capacity': { request: Record<string, never>; response: HostCapacity };
  /** liveness */
  'host.ping': { request: Record<string, never>; response: { uptimeSeconds: number } };
}

export type AgentCommand = keyof AgentCommands;
export type AgentRequest<C extends AgentCommand> = AgentCommands[C]['request'];
export type AgentResponse<C extends AgentCommand> = AgentCommands[C]['response'];
