/**
 * The host command interface: what the management node asks of a host. The simulator answers
 * it in-process today; the KVM agent will answer the same commands over HTTP. Every command is
 * idempotent (starting a running VM, deleting a missing volume: success), and re-sync commands
 * carry full desired state, never deltas.
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

export interface VmSpec {
  uuid: string;
  name: string;
  cpu: number;
  memory: number;
  volumes: VolumeSpec[];
  /** filled by the networking issue */
  nics: Array<{ uuid: string; mac: string; l3NetworkUuid: string; ip?: string }>;
}

export type SimVmState = 'Running' | 'Stopped' | 'Paused';

export interface AgentCommands {
  /** open a session with the host and learn what it is */
  'host.connect': { request: Record<string, never>; response: HostFacts };
  /** what the host physically has */
  'host.capacity': { request: Record<string, never>; response: HostCapacity };
  /** liveness */
  'host.ping': { request: Record<string, never>; response: { uptimeSeconds: number } };

  /** define and start the VM (idempotent: an already running VM is success) */
  'vm.start': { request: { vm: VmSpec }; response: { powerState: SimVmState } };
  /** graceful shutdown, or power-off when `force` */
  'vm.stop': { request: { vmUuid: string; force: boolean }; response: Record<string, never> };
  'vm.reboot': { request: { vmUuid: string }; response: Record<string, never> };
  'vm.pause': { request: { vmUuid: string }; response: Record<string, never> };
  'vm.resume': { request: { vmUuid: string }; response: Record<string, never> };
  /** remove the VM's definition from the hypervisor (idempotent: a missing VM is success) */
  'vm.destroy': { request: { vmUuid: string }; response: Record<string, never> };
  /** live-migrate a running VM from this host to `target` (sent to the source host) */
  'vm.migrate': { request: { vmUuid: string; target: string }; response: Record<string, never> };
  'vm.attach-volume': { request: { vmUuid: string; volume: VolumeSpec }; response: Record<string, never> };
  'vm.detach-volume': { request: { vmUuid: string; volumeUuid: string }; response: Record<string, never> };
  /** every VM the hypervisor knows, with its power state (for reconciliation) */
  'vm.list': {
    request: Record<string, never>;
    response: { vms: Array<{ uuid: string; state: SimVmState }> };
  };

  /** copy an image from backup storage into the primary storage's image cache */
  'image.cache': {
    request: { imageUuid: string; url: string; size: number; storage: StorageRef };
    response: { path: string; size: number };
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

/** Commands to backup storage (where images live). */
export interface BackupStorageCommands {
  'bs.connect': {
    request: Record<string, never>;
    response: { capacityTotal: number; capacityAvailable: number };
  };
  /** fetch an image from its URL onto the backup storage */
  'bs.download-image': {
    request: { imageUuid: string; url: string };
    response: { size: number; actualSize: number };
  };
  'bs.delete-image': { request: { imageUuid: string }; response: Record<string, never> };
}

export type BackupStorageCommand = keyof BackupStorageCommands;
