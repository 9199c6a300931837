/**
 * What the agent's parts give its HTTP server: a handler per host command. Each part (qemu/,
 * storage/, network/) exports a partial map; the server merges them and answers a command no part
 * handles with AGENT_COMMAND_UNKNOWN. Handlers throw CloudError for every refusal (the server
 * turns it into the one error shape); anything else becomes AGENT_INTERNAL with the message kept.
 * Besides the management node's commands (AgentCommands) an agent answers its peers'
 * (AgentPeerCommands: the target side of a live migration).
 */
import type { AgentCommands, AgentPeerCommands } from '../contract/agent.js';

export type AgentServedCommands = AgentCommands & AgentPeerCommands;
export type AgentServedCommand = keyof AgentServedCommands;

export type AgentHandler<C extends AgentServedCommand> = (
  request: AgentServedCommands[C]['request'],
) => Promise<AgentServedCommands[C]['response']>;

export type AgentHandlers = { [C in AgentServedCommand]?: AgentHandler<C> };
