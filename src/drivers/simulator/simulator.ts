/**
 * Simulated hosts: machines that live in the management node's process and answer the same
 * host commands a real agent will. Their "physical" facts (capacity) are kept in the
 * `simulator_hosts` table, apart from the platform's own records, so they survive a restart
 * just as a real machine would. Latency and failures come from the FaultRegistry
 * (points `command:<name>`, optionally per host address) plus a base latency.
 */
import type {
  AgentCommand,
  AgentCommands,
  AgentRequest,
  AgentResponse,
  HostCapacity,
} from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';
import type { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import type { HostAddress, HostDriver } from '../port.js';

export const DEFAULT_SIMULATED_CAPACITY: HostCapacity = { cpu: 32, memory: 128 * 1024 ** 3 };

export interface SimulatorOptions {
  db: Db;
  faults: FaultRegistry;
  /** base latency of every command, in milliseconds */
  latencyMs?: number;
}

type Handler<C extends AgentCommand> = (
  machine: Machine,
  request: AgentRequest<C>,
) => Promise<AgentResponse<C>>;

interface Machine {
  address: string;
  cpu: number;
  memory: number;
  bootedAt: number;
}

export class Simulator implements HostDriver {
  private readonly bootedAt = new Map<string, number>();

  constructor(private readonly o: SimulatorOptions) {}

  /**
   * Makes sure a simulated machine exists at `address`. Capacity given explicitly is applied
   * (re-adding a host may resize its machine); otherwise an existing machine keeps its own.
   */
  async ensureMachine(address: string, capacity: Partial<HostCapacity> = {}): Promise<void> {
    const explicit = {
      ...(capacity.cpu ? { cpu: capacity.cpu } : {}),
      ...(capacity.memory ? { memory: capacity.memory } : {}),
    };
    await this.o.db
      .insertInto('simulatorHosts')
      .values({
        address,
        cpu: DEFAULT_SIMULATED_CAPACITY.cpu,
        memory: DEFAULT_SIMULATED_CAPACITY.memory,
        ...explicit,
      })
      .onConflict((oc) =>
        Object.keys(explicit).length > 0
          ? oc.column('address').doUpdateSet(explicit)
          : oc.column('address').doNothing(),
      )
      .execute();
  }

  async send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    if (this.o.latencyMs) await new Promise((r) => setTimeout(r, this.o.latencyMs));
    await this.o.faults.check(`command:${command}`, host.managementIp);
    const machine = await this.machine(host.managementIp);
    const handler = HANDLERS[command] as Handler<C>;
    return handler(machine, request);
  }

  private async machine(address: string): Promise<Machine> {
    const row = await this.o.db
      .selectFrom('simulatorHosts')
      .selectAll()
      .where('address', '=', address)
      .executeTakeFirst();
    if (!row) {
      throw new CloudError('Unavailable', 'HOST_UNREACHABLE', `no simulated host answers at ${address}`, {
        details: { address },
        retryable: true,
      });
    }
    let bootedAt = this.bootedAt.get(address);
    if (bootedAt === undefined) {
      bootedAt = Date.now();
      this.bootedAt.set(address, bootedAt);
    }
    return { address, cpu: row.cpu, memory: row.memory, bootedAt };
  }
}

const HANDLERS: { [C in keyof AgentCommands]: Handler<C> } = {
  'host.connect': async (m) => ({
    hypervisorType: 'simulator',
    hypervisorVersion: '1.0',
    hostname: `sim-${m.address.replace(/\./g, '-')}`,
    cpuModel: 'Simulated CPU',
  }),
  'host.capacity': async (m) => ({ cpu: m.cpu, memory: m.memory }),
  'host.ping': async (m) => ({ uptimeSeconds: Math.floor((Date.now() - m.bootedAt) / 1000) }),
};
