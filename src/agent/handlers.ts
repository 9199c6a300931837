/**
 * What the agent's parts give its HTTP server: a handler per host command. Each part (qemu/,
 * storage/, network/) exports a partial map; the server merges them and answers a command no part
 * handles with AGENT_COMMAND_UNKNOWN. Handlers throw CloudError for every refusal (the server
 * turns it into the one error shape); anything else becomes AGENT_INTERNAL with the message kept.
 * Besides the management node's commands an agent answers its peers' (AgentPeerCommands: the
 * target side of a live migration), kept in a map of their own.
 */
import type { AgentCommand, AgentPeerCommands, AgentRequest, AgentResponse } from '../contract/agent.js';

export type AgentHandler<C extends AgentCommand> = (request: AgentRequest<C>) => Promise<AgentResponse<C>>;

export type AgentHandlers = { [C in AgentCommand]?: AgentHandler<C> };

export type AgentPeerHandlers = {
  [C in keyof AgentPeerCommands]?: (
    request: AgentPeerCommands[C]['request'],
  ) => Promise<AgentPeerCommands[C]['response']>;
};
