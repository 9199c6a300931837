/**
 * Simulated hosts: machines that live in the management node's process and answer the same
 * host commands a real agent will. Their "physical" facts (capacity) are kept in the
 * `simulator_hosts` table, apart from the platform's own records, so they survive a restart
 * just as a real machine would. Latency and failures come from the FaultRegistry
 * (points `command:<name>`, optionally per host address) plus a base latency.
 *
 * A machine's facts are kept in memory for the VM and storage commands (every one needs them;
 * reading the table each time was a round trip per command). Host-level commands (connect,
 * capacity, ping: rare) always read the table, so a machine resized there is seen at once.
 * `ensureMachine` and `setPower` on this node refresh the cache at once; a change made through
 * another node is seen after MACHINE_CACHE_MS.
 * A powered-off machine answers nothing: every command fails with HOST_UNREACHABLE.
 * Refusals are nimbus-agent's, code for code (an unknown command, a malformed request, a VM the
 * host does not have or that is not running): test/conformance holds both to the same scenarios.
 */
import type { AgentCommand, AgentRequest, AgentResponse, HostCapacity } from '../../contract/agent.js';
import type { Db } from '../../db/pool.js';
import type { FaultRegistry } from '../../engine/faults.js';
import { CloudError } from '../../kernel/errors.js';
import type { HostAddress, HostDriver } from '../port.js';
import { hostHandlers } from './host-commands.js';
import type { Machine, SimHandler, SimHandlers } from './machine.js';
import { networkHandlers, SimulatedNetworks } from './network-commands.js';
import { checkRequest } from './request-checks.js';
import { storageHandlers } from './storage-commands.js';
import { vmHandlers } from './vm-commands.js';

export const DEFAULT_SIMULATED_CAPACITY: HostCapacity = { cpu: 32, memory: 128 * 1024 ** 3 };

/** how long a machine's facts read from `simulator_hosts` are trusted */
const MACHINE_CACHE_MS = 5000;

interface MachineFacts {
  cpu: number;
  memory: number;
  poweredOff: boolean;
  readAt: number;
}

export interface SimulatorOptions {
  db: Db;
  faults: FaultRegistry;
  /** base latency of every command, in milliseconds */
  latencyMs?: number;
}

export class Simulator implements HostDriver {
  private readonly bootedAt = new Map<string, number>();
  private readonly facts = new Map<string, MachineFacts>();
  /** what the simulated hosts' networks are configured with (in memory: see network-commands.ts) */
  readonly networks = new SimulatedNetworks();
  private readonly handlers: SimHandlers;

  constructor(private readonly o: SimulatorOptions) {
    this.handlers = { ...hostHandlers, ...vmHandlers, ...storageHandlers, ...networkHandlers(this.networks) };
  }

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
    this.facts.delete(address);
  }

  /** Powers a simulated machine off (it stops answering, its VMs are gone) or on again. */
  async setPower(address: string, on: boolean): Promise<boolean> {
    const row = await this.o.db
      .selectFrom('simulatorHosts')
      .select('facts')
      .where('address', '=', address)
      .executeTakeFirst();
    if (!row) return false;
    await this.o.db
      .updateTable('simulatorHosts')
      .set({ facts: JSON.stringify({ ...row.facts, poweredOff: !on }) })
      .where('address', '=', address)
      .execute();
    this.facts.delete(address);
    if (!on) {
      await this.o.db.deleteFrom('simulatorVms').where('hostAddress', '=', address).execute();
      this.bootedAt.delete(address);
      this.networks.forget(address);
    }
    return true;
  }

  /** Changes what a simulated hypervisor says about a VM, behind the platform's back (drift). */
  async setVmState(vmUuid: string, state: 'Running' | 'Stopped' | 'Paused' | 'Absent'): Promise<boolean> {
    if (state === 'Absent') {
      const gone = await this.o.db.deleteFrom('simulatorVms').where('vmUuid', '=', vmUuid).executeTakeFirst();
      return Number(gone.numDeletedRows) > 0;
    }
    const res = await this.o.db
      .updateTable('simulatorVms')
      .set({ state, updatedAt: new Date() })
      .where('vmUuid', '=', vmUuid)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async send<C extends AgentCommand>(
    host: HostAddress,
    command: C,
    request: AgentRequest<C>,
  ): Promise<AgentResponse<C>> {
    if (this.o.latencyMs) await new Promise((r) => setTimeout(r, this.o.latencyMs));
    await this.o.faults.check(`command:${command}`, host.managementIp);
    const machine = await this.machine(host.managementIp, command.startsWith('host.'));
    const handler = this.handlers[command] as SimHandler<C> | undefined;
    if (handler === undefined) {
      throw new CloudError('NotFound', 'AGENT_COMMAND_UNKNOWN', `this host does not handle ${command}`, {
        details: { command },
      });
    }
    checkRequest(command, request);
    return handler({ machine, request, world: this.o.db });
  }

  private async machine(address: string, fresh: boolean): Promise<Machine> {
    let facts = this.facts.get(address);
    if (fresh || !facts || Date.now() - facts.readAt > MACHINE_CACHE_MS) {
      const row = await this.o.db
        .selectFrom('simulatorHosts')
        .select(['cpu', 'memory', 'facts'])
        .where('address', '=', address)
        .executeTakeFirst();
      if (!row) {
        this.facts.delete(address);
        throw unreachable(address);
      }
      const poweredOff = (row.facts as { poweredOff?: boolean } | null)?.poweredOff === true;
      facts = { cpu: row.cpu, memory: row.memory, poweredOff, readAt: Date.now() };
      this.facts.set(address, facts);
    }
    if (facts.poweredOff) throw unreachable(address, 'is powered off');
    let bootedAt = this.bootedAt.get(address);
    if (bootedAt === undefined) {
      bootedAt = Date.now();
      this.bootedAt.set(address, bootedAt);
    }
    return { address, cpu: facts.cpu, memory: facts.memory, bootedAt };
  }
}

function unreachable(address: string, why = 'does not answer'): CloudError {
  return new CloudError('Unavailable', 'HOST_UNREACHABLE', `the simulated host at ${address} ${why}`, {
    details: { address },
    retryable: true,
  });
}
