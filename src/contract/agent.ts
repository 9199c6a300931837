/**
 * The host command interface: what the management node asks of a host. The simulator answers
 * it in-process today; the KVM agent will answer the same commands over HTTP. Every command is
 * idempotent (starting a running VM, deleting a missing volume: success), and re-sync commands
 * carry full desired state, never deltas.
 *
 * Refusals both answer alike (test/conformance runs the same scenarios against each):
 * - a malformed request: Invalid, the bad field named (`details.field`, `details.fields` or
 *   `details.problems`), nothing changed;
 * - a command the host does not know: NotFound AGENT_COMMAND_UNKNOWN;
 * - a command that needs a VM the host does not have: NotFound AGENT_VM_NOT_FOUND (vm.stop and
 *   vm.destroy of such a VM succeed: what they ask for already holds);
 * - a command that needs the VM running (reboot, pause, resume, migrate) on a stopped one:
 *   Conflict AGENT_VM_NOT_RUNNING.
 */

export interface HostFacts {
  hypervisorType: string;
  hypervisorVersion: string;
  hostname: string;
  cpuModel: string;
  /** how the agent runs guests: hardware KVM, or TCG emulation where KVM cannot boot Linux */
  accelerator?: 'kvm' | 'tcg';
}

export interface HostCapacity {
  /** logical CPUs */
  cpu: number;
  /** bytes */
  memory: number;
  /** bytes: size of the filesystem holding the agent's state dir */
  disk?: number;
}

/** Where a volume lives, as the host needs to know it. */
export interface StorageRef {
  uuid: string;
  type: 'local' | 'nfs' | 'shared-mount' | 'ceph';
  url: string;
}

export interface VolumeSpec {
  uuid: string;
  /** virtual size, bytes */
  size: number;
  format: string;
  /** disk position: 0 = root (vda), 1 = vdb, … */
  deviceId: number;
  /** the path the storage gave it when it was created */
  path: string;
}

/** A Linux bridge realising an L2 network on a host (docs/network.md). */
export interface BridgeSpec {
  l2NetworkUuid: string;
  type: 'no-vlan' | 'vlan' | 'vxlan';
  /** the bridge's name on the host: derived from the L2 (br-<interface>, br-<interface>.<vlan>, br-vx<vni>) */
  bridgeName: string;
  physicalInterface: string | null;
  vlan: number | null;
  vni: number | null;
  mtu: number;
  /**
   * vxlan only: the VTEP addresses of the other hosts that carry this L2 (unicast flooding, no
   * multicast); the host's forwarding entries follow this list exactly. Absent = no peers yet.
   */
  peers?: string[];
}

/** A VM's network interface as the hypervisor plugs it. */
export interface NicSpec {
  uuid: string;
  mac: string;
  l3NetworkUuid: string;
  ip: string | null;
  prefixLength: number | null;
  gateway: string | null;
  /** 0 = eth0 */
  deviceId: number;
  isDefault: boolean;
  bridgeName: string;
  mtu: number;
}

export interface VmSpec {
  uuid: string;
  name: string;
  cpu: number;
  memory: number;
  volumes: VolumeSpec[];
  nics: NicSpec[];
  /** the guest's host name (config drive meta_data.json); defaults to `name` */
  hostname?: string;
  /** user-data handed to the guest on a config drive (cloud-init style) */
  userData?: string;
  /**
   * the guest's instance id (config drive meta_data.json `uuid`, which cloud-init takes as its
   * instance id); absent = the VM's uuid. A new id makes cloud-init apply the user-data again:
   * a pool VM handed out gets its lease's uuid, so its holder's login is applied at the next boot.
   */
  instanceId?: string;
  /**
   * set when the VM is a network appliance the host realises itself, not as a guest: a real
   * agent runs a virtual router as a network namespace (router.apply-config configures it), so
   * `vm.start` of such a VM boots no QEMU — it makes sure the router's namespace exists and
   * reports the VM Running while it does; `vm.stop`/`vm.destroy` remove the namespace. The
   * simulator treats it as any VM.
   */
  appliance?: { type: 'virtual-router'; routerUuid: string };
}

/** One VM NIC's DHCP/DNS answer (flat networks: served on the NIC's host). */
export interface DhcpEntry {
  nicUuid: string;
  mac: string;
  ip: string;
  hostname: string;
  /** only the default NIC's entry carries a gateway: one default route per VM */
  gateway: string | null;
  isDefault: boolean;
}

/** A flat L3 network's DHCP/DNS server on one host, with the entries of the NICs on that host. */
export interface DhcpNetwork {
  l3NetworkUuid: string;
  bridgeName: string;
  prefixLength: number;
  gateway: string | null;
  dns: string[];
  domainName: string | null;
  mtu: number;
  hostRoutes: Array<{ destination: string; nexthop: string }>;
  entries: DhcpEntry[];
  /**
   * the DHCP server's own address on the L3 (a reserved IP of its range; every host of the L3
   * may use the same one, each server is kept to its host); absent = the host picks the last
   * usable address of the subnet (src/agent/network/dhcp.ts), which IPAM may hand out: send it
   */
  serverIp?: string;
}

/** One allow rule, with a remote group already expanded to its members' addresses. */
export interface SgRule {
  ruleUuid: string;
  direction: 'ingress' | 'egress';
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  portStart: number | null;
  portEnd: number | null;
  ipVersion: number;
  /** null = any peer */
  remoteCidrs: string[] | null;
}

/** The firewall of one NIC: the union of its groups' rules (default deny in, allow none out). */
export interface SgNic {
  nicUuid: string;
  mac: string;
  ip: string | null;
  securityGroupUuids: string[];
  rules: SgRule[];
}

/** The whole configuration of one virtual router (it applies it as a unit, replacing the old). */
export interface RouterConfig {
  routerUuid: string;
  /** bridgeName: the host bridge of the guest L3's L2 (where the router's guest leg is plugged) */
  guest: { l3NetworkUuid: string; ip: string; prefixLength: number; mtu: number; bridgeName?: string };
  /** bridgeName: the host bridge of the public L3's L2 */
  public: { ip: string; prefixLength: number; gateway: string | null; bridgeName?: string };
  dns: string[];
  domainName: string | null;
  dhcp: DhcpEntry[];
  /** source NAT of the guest network through the public address */
  snat: { publicIp: string; guestCidr: string } | null;
  eips: Array<{ eipUuid: string; publicIp: string; guestIp: string }>;
  portForwardings: Array<{
    ruleUuid: string;
    protocol: 'tcp' | 'udp';
    publicIp: string;
    publicPortStart: number;
    publicPortEnd: number;
    guestIp: string;
    privatePortStart: number;
    privatePortEnd: number;
    allowedCidr: string | null;
  }>;
}

/**
 * Full-state network commands carry a `version` taken from the database sequence
 * `network_config_version` BEFORE the state was read: a host applies a state only when its
 * version is newer than the one it has, so two re-syncs racing cannot leave the older state
 * (the newest version was read after every change committed before it; docs/network.md).
 */
export interface Versioned {
  version: number;
}

export interface NetworkApplyResponse {
  /** false: the host already had a newer version and kept it */
  applied: boolean;
}

export type SimVmState = 'Running' | 'Stopped' | 'Paused';

export interface AgentCommands {
  /** open a session with the host and learn what it is */
  'host.connect': { request: Record<string, never>; response: HostFacts };
  /** what the host physically has */
  'host.capacity': { request: Record<string, never>; response: HostCapacity };
  /** liveness */
  'host.ping': { request: Record<string, never>; response: { uptimeSeconds: number } };

  /**
   * define and start the VM (idempotent: a VM already running or paused on the host is left as it
   * is, and the answer is its power state)
   */
  'vm.start': { request: { vm: VmSpec }; response: { powerState: SimVmState } };
  /** graceful shutdown, or power-off when `force` (idempotent: a stopped or missing VM is success) */
  'vm.stop': { request: { vmUuid: string; force: boolean }; response: Record<string, never> };
  'vm.reboot': { request: { vmUuid: string }; response: Record<string, never> };
  'vm.pause': { request: { vmUuid: string }; response: Record<string, never> };
  'vm.resume': { request: { vmUuid: string }; response: Record<string, never> };
  /** remove the VM's definition from the hypervisor (idempotent: a missing VM is success) */
  'vm.destroy': { request: { vmUuid: string }; response: Record<string, never> };
  /** live-migrate a running VM from this host to `target` (sent to the source host) */
  'vm.migrate': {
    request: {
      vmUuid: string;
      target: string;
      /**
       * real hosts: how the source agent reaches the target's agent for `vm.prepare-migration`
       * (its base URL and the Authorization header value; filled by the KVM driver, a secret)
       */
      targetAgent?: { url: string; authorization: string };
    };
    response: Record<string, never>;
  };
  'vm.attach-volume': { request: { vmUuid: string; volume: VolumeSpec }; response: Record<string, never> };
  'vm.detach-volume': { request: { vmUuid: string; volumeUuid: string }; response: Record<string, never> };
  /** every VM the hypervisor knows, with its power state (for reconciliation) */
  'vm.list': {
    request: Record<string, never>;
    response: { vms: Array<{ uuid: string; state: SimVmState }> };
  };

  /**
   * the tail of the VM's serial console output as the host keeps it (a real host: QEMU's serial
   * chardev file, capped; the simulator: a synthetic boot log per VM), at most `tailBytes`;
   * `size`: the bytes the host keeps of it (more than `log` when the tail was cut)
   */
  'vm.serial-log': {
    request: { vmUuid: string; tailBytes: number };
    response: { log: string; size: number };
  };

  /** hot-plug a NIC into a running VM (idempotent) */
  'vm.attach-nic': { request: { vmUuid: string; nic: NicSpec }; response: Record<string, never> };
  'vm.detach-nic': { request: { vmUuid: string; nicUuid: string }; response: Record<string, never> };

  /** the bridges the host must have: the whole set (bridges not listed are removed) */
  'network.ensure-bridges': {
    request: Versioned & { bridges: BridgeSpec[] };
    response: NetworkApplyResponse;
  };
  /** flat networks' DHCP/DNS servers on the host: the whole set (networks not listed are stopped) */
  'dhcp.set-entries': { request: Versioned & { networks: DhcpNetwork[] }; response: NetworkApplyResponse };
  /** security-group rules of every NIC on the host: the whole set (NICs not listed lose theirs) */
  'sg.apply': { request: Versioned & { nics: SgNic[] }; response: NetworkApplyResponse };
  /** a virtual router's whole configuration (sent to the host its appliance VM runs on) */
  'router.apply-config': { request: Versioned & { config: RouterConfig }; response: NetworkApplyResponse };
  /** the version of the configuration a router runs (0 = none, e.g. after a reboot) */
  'router.status': { request: { routerUuid: string }; response: { version: number } };

  /** copy an image from backup storage into the primary storage's image cache */
  'image.cache': {
    request: {
      imageUuid: string;
      url: string;
      size: number;
      storage: StorageRef;
      /** hex sha256 of the image file: the host refuses a copy that does not match */
      sha256?: string;
      /**
       * the Authorization header value to send when fetching `url` (an agent backup storage's
       * `Bearer <secret>`); a secret: the agent never logs it. Absent = send none.
       */
      authorization?: string;
    };
    response: { path: string; size: number };
  };
  /**
   * copy a volume or snapshot file from primary storage onto backup storage as an image
   * (idempotent: an image already there is success)
   */
  'image.upload': {
    request: {
      imageUuid: string;
      sourcePath: string;
      size: number;
      storage: StorageRef;
      backupStorageUrl: string;
      /** the Authorization header value for the backup storage (as in image.cache) */
      authorization?: string;
    };
    response: { size: number; actualSize: number };
  };
  /** resize a running VM's disk after its volume grew (QEMU block_resize) */
  'vm.resize-volume': {
    request: { vmUuid: string; volumeUuid: string; size: number };
    response: Record<string, never>;
  };
  'image.uncache': { request: { imageUuid: string; storage: StorageRef }; response: Record<string, never> };
  /** create a volume, empty or as a copy-on-write clone of a cached image */
  'volume.create': {
    request: {
      volumeUuid: string;
      size: number;
      format: string;
      storage: StorageRef;
      fromImageCachePath?: string;
    };
    response: { path: string; actualSize: number };
  };
  'volume.delete': { request: { volumeUuid: string; storage: StorageRef }; response: Record<string, never> };
  'volume.resize': {
    request: { volumeUuid: string; size: number; storage: StorageRef };
    response: Record<string, never>;
  };
  'snapshot.create': {
    request: { volumeUuid: string; snapshotUuid: string; storage: StorageRef };
    response: { size: number; path: string };
  };
  'snapshot.delete': {
    request: { snapshotUuid: string; storage: StorageRef };
    response: Record<string, never>;
  };
  'snapshot.revert': {
    request: { volumeUuid: string; snapshotUuid: string; storage: StorageRef };
    response: Record<string, never>;
  };
}

export type AgentCommand = keyof AgentCommands;
export type AgentRequest<C extends AgentCommand> = AgentCommands[C]['request'];
export type AgentResponse<C extends AgentCommand> = AgentCommands[C]['response'];

/**
 * Commands one agent sends another, never the management node (so the simulator needs none):
 * the target side of a live migration.
 */
export interface AgentPeerCommands {
  /**
   * start the VM's QEMU waiting for an incoming migration and answer the URI the source must
   * migrate to (idempotent: a VM already waiting answers the same URI). `blockMigration`: the
   * target did not have the VM's local disk files and made empty ones, exported (writable) by
   * the NBD server at `nbd` (`tcp:host:port`, export name = the disk's block node name), so the
   * source must mirror the disks there before migrating the memory.
   */
  'vm.prepare-migration': {
    request: { vm: VmSpec };
    response: { uri: string; blockMigration?: { nbd: string } };
  };
}

/** Commands to backup storage (where images live). */
export interface BackupStorageCommands {
  'bs.connect': {
    request: Record<string, never>;
    response: { capacityTotal: number; capacityAvailable: number };
  };
  /** fetch an image from its URL onto the backup storage */
  'bs.download-image': {
    request: { imageUuid: string; url: string };
    /** sha256: hex digest of the stored file (a real backup storage computes it; optional) */
    response: { size: number; actualSize: number; sha256?: string };
  };
  'bs.delete-image': { request: { imageUuid: string }; response: Record<string, never> };
}

export type BackupStorageCommand = keyof BackupStorageCommands;
