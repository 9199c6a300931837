/**
 * The KVM host driver: every host command goes to the host's nimbus-agent over HTTP
 * (agent-client.ts), with the host's own secret and a deadline per command (timeouts.ts).
 * It holds no state of its own: what a host runs is what its agent says.
 */
import type { AgentCommand, AgentRequest, AgentResponse } from '../../contract/agent.js';
import { CloudError } from '../../kernel/errors.js';
import type { HostAddress, HostDriver } from '../port.js';
import type { AgentClient } from './agent-client.js';
import type { AgentCredentials } from './credentials.js';
import { commandTimeoutMs } from './timeouts.js';

export class KvmHostDriver implements HostDriver {
  constructor(
    private readonly client: AgentClient,
    private readonly credentials: AgentCredentials,
  ) {}

  async send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    const endpoint = await this.credentials.hostEndpoint(host);
    let body: unknown = request;
    if (command === 'vm.migrate') {
      // the source agent asks the target's agent to get ready (vm.prepare-migration): it needs
      // where that agent is and its secret, which only the management side holds
      const target = await this.credentials.hostEndpointByIp((request as AgentRequest<'vm.migrate'>).target);
      // (the agent takes `target` as host:port or a URL: the target's base URL carries its port)
      body = {
        ...request,
        target: target.baseUrl,
        targetAgent: { url: target.baseUrl, authorization: `Bearer ${target.secret}` },
      };
    }
    try {
      return (await this.client.command(endpoint, command, body, {
        timeoutMs: commandTimeoutMs(command),
      })) as AgentResponse<C>;
    } catch (err) {
      if (err instanceof CloudError && err.code === 'HOST_AGENT_SECRET_REJECTED')
        this.credentials.forget(host.uuid);
      throw err;
    }
  }
}
