/**
 * Simulated host networking: what a host's bridges, DHCP servers, firewall and virtual routers
 * are configured with, kept in the memory of the simulator (one per management node process):
 * the commands are full-state and versioned, so a host that lost its state (a restarted node)
 * gets it all back with the next re-sync, as a rebooted real host would. Tests read the applied
 * state and the command log through `SimulatedNetworks` (and GET /v1/simulator/network/…).
 * A full-state command older than the state a host has is refused as stale (applied: false).
 * NIC hot-plug needs the VM on the host (NotFound AGENT_VM_NOT_FOUND otherwise, as on an agent).
 */
import type {
  BridgeSpec,
  DhcpNetwork,
  NetworkApplyResponse,
  NicSpec,
  RouterConfig,
  SgNic,
} from '../../contract/agent.js';
import type { SimContext, SimHandlers } from './machine.js';
import { definedState } from './vm-commands.js';

type NetworkCommands =
  | 'vm.attach-nic'
  | 'vm.detach-nic'
  | 'network.ensure-bridges'
  | 'dhcp.set-entries'
  | 'sg.apply'
  | 'router.apply-config'
  | 'router.status';

interface Applied<T> {
  version: number;
  state: T;
}

export interface HostNetworkState {
  bridges?: Applied<BridgeSpec[]>;
  dhcp?: Applied<DhcpNetwork[]>;
  sg?: Applied<SgNic[]>;
  /** hot-plugged NICs per VM (NICs given with vm.start are in the VM's definition) */
  plugged: Map<string, Map<string, NicSpec>>;
}

export interface RecordedCommand {
  seq: number;
  address: string;
  command: string;
  request: unknown;
  applied: boolean;
}

/** how many commands the log keeps (the oldest go first) */
const LOG_SIZE = 20_000;

export class SimulatedNetworks {
  private readonly hosts = new Map<string, HostNetworkState>();
  private readonly routers = new Map<string, Applied<RouterConfig> & { address: string }>();
  private readonly log: RecordedCommand[] = [];
  private seq = 0;

  host(address: string): HostNetworkState {
    let h = this.hosts.get(address);
    if (!h) {
      h = { plugged: new Map() };
      this.hosts.set(address, h);
    }
    return h;
  }

  router(routerUuid: string): (Applied<RouterConfig> & { address: string }) | undefined {
    return this.routers.get(routerUuid);
  }

  /** the commands received since `afterSeq`, oldest first (optionally one host's, one command's) */
  commands(filter: { address?: string; command?: string; afterSeq?: number } = {}): RecordedCommand[] {
    return this.log.filter(
      (c) =>
        (filter.address === undefined || c.address === filter.address) &&
        (filter.command === undefined || c.command === filter.command) &&
        c.seq > (filter.afterSeq ?? 0),
    );
  }

  lastSeq(): number {
    return this.seq;
  }

  /** a host lost power: its network state is gone with it (routers on it too) */
  forget(address: string): void {
    this.hosts.delete(address);
    for (const [uuid, r] of this.routers) if (r.address === address) this.routers.delete(uuid);
  }

  /** a router appliance rebooted: it comes back with no configuration */
  forgetRouter(routerUuid: string): void {
    this.routers.delete(routerUuid);
  }

  record(address: string, command: string, request: unknown, applied: boolean): void {
    this.seq += 1;
    this.log.push({ seq: this.seq, address, command, request, applied });
    if (this.log.length > LOG_SIZE) this.log.splice(0, this.log.length - LOG_SIZE);
  }

  /** applies a full state when it is newer than what the host has */
  apply<K extends 'bridges' | 'dhcp' | 'sg'>(
    address: string,
    key: K,
    version: number,
    state: NonNullable<HostNetworkState[K]>['state'],
  ): boolean {
    const h = this.host(address);
    const current = h[key] as Applied<unknown> | undefined;
    if (current && current.version >= version) return false;
    (h as unknown as Record<string, Applied<unknown>>)[key] = { version, state };
    return true;
  }

  applyRouter(address: string, version: number, config: RouterConfig): boolean {
    const current = this.routers.get(config.routerUuid);
    if (current && current.version >= version) return false;
    this.routers.set(config.routerUuid, { version, state: config, address });
    return true;
  }
}

export function networkHandlers(networks: SimulatedNetworks): Pick<SimHandlers, NetworkCommands> {
  const applied = (
    ctx: SimContext<NetworkCommands>,
    command: NetworkCommands,
    ok: boolean,
  ): NetworkApplyResponse => {
    networks.record(ctx.machine.address, command, ctx.request, ok);
    return { applied: ok };
  };
  return {
    async 'vm.attach-nic'(ctx) {
      await definedState(ctx, ctx.request.vmUuid);
      const h = networks.host(ctx.machine.address);
      const nics = h.plugged.get(ctx.request.vmUuid) ?? new Map<string, NicSpec>();
      nics.set(ctx.request.nic.uuid, ctx.request.nic);
      h.plugged.set(ctx.request.vmUuid, nics);
      networks.record(ctx.machine.address, 'vm.attach-nic', ctx.request, true);
      return {};
    },
    async 'vm.detach-nic'(ctx) {
      await definedState(ctx, ctx.request.vmUuid);
      networks.host(ctx.machine.address).plugged.get(ctx.request.vmUuid)?.delete(ctx.request.nicUuid);
      networks.record(ctx.machine.address, 'vm.detach-nic', ctx.request, true);
      return {};
    },
    async 'network.ensure-bridges'(ctx) {
      const { version, bridges } = ctx.request;
      return applied(
        ctx,
        'network.ensure-bridges',
        networks.apply(ctx.machine.address, 'bridges', version, bridges),
      );
    },
    async 'dhcp.set-entries'(ctx) {
      const { version, networks: state } = ctx.request;
      return applied(ctx, 'dhcp.set-entries', networks.apply(ctx.machine.address, 'dhcp', version, state));
    },
    async 'sg.apply'(ctx) {
      const { version, nics } = ctx.request;
      return applied(ctx, 'sg.apply', networks.apply(ctx.machine.address, 'sg', version, nics));
    },
    async 'router.apply-config'(ctx) {
      const { version, config } = ctx.request;
      return applied(ctx, 'router.apply-config', networks.applyRouter(ctx.machine.address, version, config));
    },
    async 'router.status'(ctx) {
      return { version: networks.router(ctx.request.routerUuid)?.version ?? 0 };
    },
  };
}
