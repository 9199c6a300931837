/** What a simulated command handler gets: the machine it runs on and the simulator's world (its own tables). */
import type { AgentCommand, AgentCommands, AgentRequest, AgentResponse } from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';

export interface Machine {
  address: string;
  cpu: number;
  memory: number;
  bootedAt: number;
}

export interface SimContext<C extends AgentCommand> {
  machine: Machine;
  request: AgentRequest<C>;
  /** the simulator's world: `simulator_hosts`, `simulator_vms` (never the platform's tables) */
  world: Db;
}

export type SimHandler<C extends AgentCommand> = (ctx: SimContext<C>) => Promise<AgentResponse<C>>;

export type SimHandlers = { [C in keyof AgentCommands]: SimHandler<C> };
